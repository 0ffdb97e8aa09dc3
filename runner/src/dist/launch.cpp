#include "dist/launch.hpp"

#include <unistd.h>

#include <cstdlib>

#include "runner/error.hpp"

namespace runner {
namespace {

// An environment variable as a whole number, or `fallback` when it is not set.
long env_int(const EnvLookup& env, const char* name, long fallback) {
  const char* v = env(name);
  if (!v || !*v) return fallback;
  char* end = nullptr;
  const long n = std::strtol(v, &end, 10);
  if (*end || n < 0)
    throw ConfigError(std::string("launch: the environment variable ") + name + "='" + v +
                      "' is not a whole number >= 0");
  return n;
}

DistInfo torchrun_info(const EnvLookup& env, long world) {
  std::string missing;
  for (const char* v : {"RANK", "MASTER_ADDR", "MASTER_PORT"})
    if (!env(v) || !*env(v)) missing += std::string(missing.empty() ? "" : ", ") + v;
  if (!missing.empty())
    throw ConfigError("launch: WORLD_SIZE=" + std::to_string(world) + " but " + missing +
                      " not set: start runner with torchrun --no-python --nproc_per_node=N runner CONFIG, or mpirun "
                      "-np N runner CONFIG");
  DistInfo info;
  info.launcher = "torchrun";
  info.world_size = static_cast<int>(world);
  info.rank = static_cast<int>(env_int(env, "RANK", 0));
  info.local_rank = static_cast<int>(env_int(env, "LOCAL_RANK", 0));
  info.local_size = static_cast<int>(env_int(env, "LOCAL_WORLD_SIZE", 1));
  info.restart = static_cast<int>(env_int(env, "TORCHELASTIC_RESTART_COUNT", 0));
  if (info.rank >= info.world_size || info.local_rank >= info.local_size)
    throw ConfigError("launch: RANK=" + std::to_string(info.rank) + " / LOCAL_RANK=" + std::to_string(info.local_rank) +
                      " do not fit WORLD_SIZE=" + std::to_string(info.world_size) +
                      " / LOCAL_WORLD_SIZE=" + std::to_string(info.local_size));
  // The same on every attempt of one torchrun job, different between jobs: the user's
  // --rdzv-id when there is one, else the torchrun agent of node 0 (rank 0's parent).
  const char* id = env("TORCHELASTIC_RUN_ID");
  const std::string run_id = id && *id ? id : "none";
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  info.launch_id = run_id != "none" ? "torchrun " + run_id
                                    : "torchrun agent " + std::string(host) + ":" + std::to_string(getppid()) +
                                          " port " + std::string(env("MASTER_PORT"));
  return info;
}

// A Slurm job (sbatch, salloc, srun): its id is the same on every run of a requeued job,
// whose SLURM_RESTART_COUNT counts the requeues.
DistInfo with_slurm_job(DistInfo info, const EnvLookup& env) {
  const char* job = env("SLURM_JOB_ID");
  if (!job || !*job) return info;
  info.launch_id = "slurm job " + std::string(job);
  info.restart = static_cast<int>(env_int(env, "SLURM_RESTART_COUNT", 0));
  return info;
}

}  // namespace

bool started_by_an_mpi_launcher(const EnvLookup& env) {
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_RANK", "PMI_SIZE", "PMI_RANK", "PMI_FD", "PMIX_RANK",
                        "MV2_COMM_WORLD_SIZE", "SLURM_STEP_NUM_TASKS"})
    if (env(v)) return true;
  return false;
}

DistInfo detect_launch(const DistInfo& mpi, const EnvLookup& env) {
  if (mpi.world_size > 1) return with_slurm_job(mpi, env);  // mpirun or srun --mpi=pmix: MPI knows the world
  const long world = env_int(env, "WORLD_SIZE", 1);
  if (world > 1) return torchrun_info(env, world);
  const struct {
    const char* var;
    const char* says;
  } others[] = {
      {"SLURM_STEP_NUM_TASKS", "srun started %d tasks that MPI does not join: use srun --mpi=pmix (or mpirun)"},
      {"OMPI_COMM_WORLD_SIZE", "Open MPI's launcher started %d processes that this runner's MPI does not join"},
      {"PMI_SIZE", "a PMI launcher (MPICH's mpiexec?) started %d processes that this runner's Open MPI does not join"},
      {"MV2_COMM_WORLD_SIZE", "MVAPICH's launcher started %d processes that this runner's Open MPI does not join"},
      {"LOCAL_WORLD_SIZE", "LOCAL_WORLD_SIZE says %d processes but WORLD_SIZE is not set"},
  };
  for (const auto& o : others) {
    const long n = env_int(env, o.var, 1);
    if (n <= 1) continue;
    std::string says = o.says;
    says.replace(says.find("%d"), 2, std::to_string(n));
    throw ConfigError("launch: " + says + " (" + o.var + "=" + std::to_string(n) +
                      "); each would train alone. Launch with mpirun -np N, srun --mpi=pmix -n N, or torchrun "
                      "--no-python --nproc_per_node=N runner CONFIG");
  }
  return with_slurm_job(mpi, env);
}

StoreAddress torchrun_store(const EnvLookup& env) {
  StoreAddress a;
  a.host = env("MASTER_ADDR") ? env("MASTER_ADDR") : "";
  const long port = env_int(env, "MASTER_PORT", 0);
  if (a.host.empty() || port <= 0 || port > 65535)
    throw ConfigError("launch: torchrun's MASTER_ADDR/MASTER_PORT do not name a store (MASTER_ADDR='" + a.host +
                      "', MASTER_PORT=" + std::to_string(port) + ")");
  a.port = static_cast<int>(port);
  const char* agent = env("TORCHELASTIC_USE_AGENT_STORE");
  a.agent_hosts_it = agent && std::string(agent) == "True";
  return a;
}

}  // namespace runner
