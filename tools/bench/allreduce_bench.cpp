// All-reduce bandwidth of the runner's gradient path against raw MPI_Allreduce.
//   mpirun -np 2 build/bin/runner_allreduce_bench [MB=100] [bucket_mb=25] [repeats=10]
// "raw": one blocking MPI_Allreduce over the whole float32 buffer. "runner": the same
// bytes as parameters of a GradReducer (buckets of bucket_mb, non-blocking all-reduce
// per bucket through the Communicator, then wait). Algorithm bandwidth = bytes / time;
// the median of `repeats` timed runs after one warm-up.
#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "dist/communicator.hpp"
#include "dist/dist.hpp"
#include "dist/reducer.hpp"

using namespace runner;

namespace {
double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}
double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }
}  // namespace

int main(int argc, char** argv) {
  DistContext dist;
  ensure_mpi();  // the raw MPI calls below, also when started alone
  const double mb = argc > 1 ? std::atof(argv[1]) : 100;
  const double bucket_mb = argc > 2 ? std::atof(argv[2]) : 25;
  const int repeats = argc > 3 ? std::atoi(argv[3]) : 10;
  const int64_t numel = static_cast<int64_t>(mb * 1e6 / 4);
  auto comm = make_communicator(dist.info(), CommOptions{"mpi", 0, false, "", -1});

  // raw MPI_Allreduce on one buffer
  torch::Tensor raw = torch::ones({numel});
  std::vector<double> t_raw;
  for (int i = 0; i <= repeats; ++i) {
    MPI_Barrier(MPI_COMM_WORLD);
    const double t0 = now();
    MPI_Allreduce(MPI_IN_PLACE, raw.data_ptr<float>(), static_cast<int>(numel), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    if (i) t_raw.push_back(now() - t0);
  }

  // the runner's path: ~100 parameters of equal size in buckets
  const int nparams = 100;
  std::vector<torch::Tensor> params;
  for (int k = 0; k < nparams; ++k) params.push_back(torch::ones({numel / nparams}).requires_grad_(true));
  GradReducer reducer(params, *comm, static_cast<int64_t>(bucket_mb * 1e6));
  std::vector<double> t_runner;
  const float mine = static_cast<float>(dist.info().rank + 1);
  for (int i = 0; i <= repeats; ++i) {
    reducer.prepare(1.0);
    for (auto& p : params) p.mutable_grad().fill_(mine);
    MPI_Barrier(MPI_COMM_WORLD);
    const double t0 = now();
    reducer.finish();
    if (i) t_runner.push_back(now() - t0);
  }
  // Each gradient must now hold 1 + 2 + ... + world.
  const int w = dist.info().world_size;
  for (auto& p : params)
    if (!p.grad().eq(static_cast<float>(w * (w + 1) / 2)).all().item<bool>()) {
      std::fprintf(stderr, "rank %d: wrong all-reduce result\n", dist.info().rank);
      return 1;
    }
  const double bytes = static_cast<double>(numel / nparams * nparams) * 4;
  if (dist.info().rank == 0) {
    const double raw_s = median(t_raw), run_s = median(t_runner);
    std::printf("ranks %d, %.0f MB float32, %zu bucket(s) of <= %.0f MB, median of %d\n", dist.info().world_size,
                bytes / 1e6, reducer.num_buckets(), bucket_mb, repeats);
    std::printf("%-28s %9.1f ms  %8.2f GB/s\n", "raw MPI_Allreduce", raw_s * 1e3, bytes / raw_s / 1e9);
    std::printf("%-28s %9.1f ms  %8.2f GB/s  (%.0f%% of raw)\n", "runner GradReducer buckets", run_s * 1e3,
                bytes / run_s / 1e9, 100 * raw_s / run_s);
  }
  return 0;
}
