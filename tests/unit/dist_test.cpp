// Gradient buckets and the data-parallel checks, with a fake communicator that
// plays "world" identical ranks (an all-reduce multiplies by the world size).
#include <map>

#include "device/host_read.hpp"
#include "dist/communicator.hpp"
#include "dist/dist.hpp"
#include "dist/launch.hpp"
#include "dist/reducer.hpp"
#include "dist/sync.hpp"
#include "engine/loss_meter.hpp"
#include "runner/nn.hpp"
#include "test_util.hpp"

namespace {

// A launcher's environment, for detect_launch.
runner::EnvLookup env_of(std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](const char* name) -> const char* {
    auto it = vars.find(name);
    return it == vars.end() ? nullptr : it->second.c_str();
  };
}

class FakeWork : public runner::Work {
 public:
  void wait() override {}
  bool test() override { return true; }
};

class FakeComm : public runner::Communicator {
 public:
  explicit FakeComm(int world) : Communicator(info(world), /*timeout=*/0) {}
  std::string backend() const override { return "fake"; }
  std::unique_ptr<runner::Work> allreduce_async(const torch::Tensor& flat) override {
    launched.push_back(flat.numel());
    if (events) events->push_back("allreduce " + std::to_string(flat.numel()));
    flat.mul_(world_size());
    return std::make_unique<FakeWork>();
  }
  void broadcast(const std::vector<torch::Tensor>&, int) override {}
  std::vector<int64_t> launched;               ///< sizes of the buckets, in launch order
  std::vector<std::string>* events = nullptr;  ///< when set: "allreduce <numel>" as each starts

 private:
  static runner::DistInfo info(int world) {
    runner::DistInfo d;
    d.world_size = world;
    return d;
  }
};

}  // namespace

TEST_SUITE("dist") {
  TEST_CASE("the launch: MPI's world, torchrun's environment, and launchers that would start N copies") {
    runner::DistInfo alone;
    CHECK(runner::detect_launch(alone, env_of({})).launcher == "mpi");
    runner::DistInfo mpi;  // mpirun -np 4: MPI's world wins over any other variable
    mpi.world_size = 4;
    mpi.rank = 3;
    CHECK(runner::detect_launch(mpi, env_of({{"WORLD_SIZE", "2"}, {"SLURM_STEP_NUM_TASKS", "4"}})).rank == 3);
    const auto tr = runner::detect_launch(alone, env_of({{"WORLD_SIZE", "4"},
                                                         {"RANK", "3"},
                                                         {"LOCAL_RANK", "1"},
                                                         {"LOCAL_WORLD_SIZE", "2"},
                                                         {"MASTER_ADDR", "node0"},
                                                         {"MASTER_PORT", "29500"},
                                                         {"TORCHELASTIC_RUN_ID", "job7"},
                                                         {"TORCHELASTIC_RESTART_COUNT", "2"}}));
    CHECK(tr.launcher == "torchrun");
    CHECK((tr.rank == 3 && tr.world_size == 4 && tr.local_rank == 1 && tr.local_size == 2 && tr.restart == 2));
    CHECK(tr.launch_id == "torchrun job7");
    const auto store = runner::torchrun_store(
        env_of({{"MASTER_ADDR", "node0"}, {"MASTER_PORT", "29500"}, {"TORCHELASTIC_USE_AGENT_STORE", "True"}}));
    CHECK((store.host == "node0" && store.port == 29500 && store.agent_hosts_it));
    CHECK(runner::detect_launch(alone, env_of({{"WORLD_SIZE", "1"}, {"RANK", "0"}})).launcher == "mpi");
    CHECK_THROWS_WITH_AS(runner::detect_launch(alone, env_of({{"WORLD_SIZE", "2"}, {"RANK", "0"}})),
                         doctest::Contains("WORLD_SIZE=2 but MASTER_ADDR, MASTER_PORT not set"), runner::ConfigError);
    CHECK_THROWS_WITH_AS(
        runner::detect_launch(alone,
                              env_of({{"WORLD_SIZE", "2"}, {"RANK", "2"}, {"MASTER_ADDR", "a"}, {"MASTER_PORT", "1"}})),
        doctest::Contains("RANK=2 / LOCAL_RANK=0 do not fit WORLD_SIZE=2"), runner::ConfigError);
    CHECK_THROWS_WITH_AS(runner::detect_launch(alone, env_of({{"SLURM_STEP_NUM_TASKS", "8"}})),
                         doctest::Contains("srun started 8 tasks that MPI does not join"), runner::ConfigError);
    CHECK_THROWS_WITH_AS(runner::detect_launch(alone, env_of({{"OMPI_COMM_WORLD_SIZE", "2"}})),
                         doctest::Contains("each would train alone"), runner::ConfigError);
    CHECK_THROWS_WITH_AS(runner::detect_launch(alone, env_of({{"WORLD_SIZE", "two"}})),
                         doctest::Contains("WORLD_SIZE='two' is not a whole number"), runner::ConfigError);
    CHECK(runner::detect_launch(alone, env_of({{"SLURM_STEP_NUM_TASKS", "1"}, {"PMI_SIZE", "1"}})).world_size == 1);
    // A (requeued) Slurm job: its id and restart count, under srun's MPI world or alone.
    const auto job = runner::detect_launch(mpi, env_of({{"SLURM_JOB_ID", "812"}, {"SLURM_RESTART_COUNT", "1"}}));
    CHECK((job.launcher == "mpi" && job.launch_id == "slurm job 812" && job.restart == 1 && job.world_size == 4));
    CHECK(runner::detect_launch(alone, env_of({{"SLURM_JOB_ID", "9"}})).launch_id == "slurm job 9");
    CHECK(runner::detect_launch(alone, env_of({})).launch_id.empty());
  }

  TEST_CASE("started alone, a process never initialises MPI: a world of one needs none of it") {
    // Which environments start MPI at once: a launcher's variables, not torchrun's.
    CHECK_FALSE(runner::started_by_an_mpi_launcher(env_of({})));
    CHECK_FALSE(
        runner::started_by_an_mpi_launcher(env_of({{"WORLD_SIZE", "2"}, {"RANK", "0"}, {"SLURM_JOB_ID", "9"}})));
    for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK", "PMI_FD", "SLURM_STEP_NUM_TASKS"})
      CHECK(runner::started_by_an_mpi_launcher(env_of({{v, "2"}})));
    // ctest starts this binary alone; under mpirun the same test expects MPI started.
    const bool launched = runner::started_by_an_mpi_launcher([](const char* n) { return std::getenv(n); });
    runner::DistContext dist;
    CHECK(dist.info().world_size == 1);
    auto comm = runner::make_communicator(dist.info(), runner::CommOptions{"mpi", 5, false, "", -1});
    const torch::Tensor t = torch::arange(4, torch::kFloat32);
    comm->allreduce({t});
    comm->broadcast({t}, 0);
    comm->barrier();
    CHECK(torch::equal(t, torch::arange(4, torch::kFloat32)));
    CHECK((comm->allreduce_sum({1.0, 2.0}) == std::vector<double>{1.0, 2.0}));
    CHECK(comm->broadcast(std::string("x"), 0) == "x");
    CHECK(runner::mpi_initialized() == launched);
  }

  TEST_CASE("buckets follow reverse parameter order and the size limit; grads are bucket views") {
    FakeComm comm(1);
    // 4 parameters of 100, 200, 300, 400 floats; buckets of at most 2,000 bytes (500 floats).
    std::vector<torch::Tensor> params;
    for (int64_t n : {100, 200, 300, 400}) params.push_back(torch::ones({n}).requires_grad_(true));
    runner::GradReducer reducer(params, comm, 2000);
    CHECK(reducer.num_buckets() == 3);  // {400}, {300, 200}, {100}
    reducer.prepare(1.0);
    torch::Tensor loss = torch::zeros({});
    for (size_t i = 0; i < params.size(); ++i) loss = loss + params[i].sum() * static_cast<double>(i + 1);
    loss.backward();
    reducer.finish();
    CHECK(comm.launched == std::vector<int64_t>{400, 500, 100});
    for (size_t i = 0; i < params.size(); ++i)
      CHECK(params[i].grad().eq(static_cast<double>(i + 1)).all().item<bool>());
    // A second step reuses the same storage (views), zeroed by prepare().
    const void* storage = params[2].grad().data_ptr();
    reducer.prepare(1.0);
    CHECK(params[2].grad().data_ptr() == storage);
    CHECK(params[2].grad().abs().sum().item<double>() == 0);
  }

  TEST_CASE("each rank's gradient is weighted by its share of the global batch, then summed") {
    FakeComm comm(2);
    auto w = torch::full({3}, 2.0).requires_grad_(true);
    runner::GradReducer reducer({w}, comm, 1 << 20);
    reducer.prepare(0.25);  // this rank holds a quarter of the global batch
    (w * 4).sum().backward();
    reducer.finish();
    // 4 * 0.25, summed over two identical ranks.
    CHECK(w.grad().eq(2.0).all().item<bool>());
    CHECK(reducer.launched_in_backward() == 1);
  }

  TEST_CASE("a recording communicator: bucket all-reduces start while backward still runs") {
    FakeComm comm(2);
    std::vector<std::string> events;
    comm.events = &events;
    // Three linear layers, one bucket each (reverse order: the last layer's gradient is ready first).
    torch::nn::Sequential net(torch::nn::Linear(8, 8), torch::nn::Tanh(), torch::nn::Linear(8, 8), torch::nn::Tanh(),
                              torch::nn::Linear(8, 2));
    std::vector<torch::Tensor> params;
    for (auto& p : net->parameters()) params.push_back(p);
    runner::GradReducer reducer(params, comm, /*bucket_bytes=*/8 * 8 * 4 + 8 * 4);
    REQUIRE(reducer.num_buckets() == 3);
    torch::Tensor x = torch::randn({4, 8}, torch::requires_grad());
    // The input's gradient is the last thing backward computes.
    x.register_hook([&](const torch::Tensor& g) {
      events.push_back("backward reaches the input");
      return g;
    });
    reducer.prepare(0.5);
    net->forward(x).pow(2).sum().backward();
    events.push_back("backward returned");
    reducer.finish();
    // Buckets of <= 72 floats in reverse order: {last layer 18 + bias 8}, {weight 64 + bias 8}, {first weight 64}.
    // Two start before backward even reaches the input, the third from the first layer's own
    // hook; all three before backward returns.
    CHECK(events == std::vector<std::string>{"allreduce 26", "allreduce 72", "backward reaches the input",
                                             "allreduce 64", "backward returned"});
    CHECK(reducer.launched_in_backward() == 3);
  }

  TEST_CASE("the loss meter: running average as the host computed it, one read per interval, failure on nan") {
    FakeComm comm(1);
    runner::LossMeter meter;
    double host = 0;  // the running average as the host computed it before (Ignite's, alpha 0.98)
    const int64_t reads = runner::device::host_reads();
    double last = 0;
    for (int i = 1; i <= 10; ++i) {
      const double loss = 1.0 / i;  // a batch of 4 samples whose mean loss is `loss`
      meter.add(torch::tensor(loss * 4, torch::kFloat64), 4);
      host = i == 1 ? loss : 0.98 * host + 0.02 * loss;
      last = loss;
    }
    CHECK(runner::device::host_reads() == reads);  // adding reads nothing
    auto v = meter.read(comm, 10, 1);
    CHECK(runner::device::host_reads() == reads + 1);
    CHECK(v.batch_loss == doctest::Approx(last).epsilon(1e-15));
    CHECK(v.running == doctest::Approx(host).epsilon(1e-15));
    meter.read(comm, 10, 1);  // nothing new: no read
    CHECK(runner::device::host_reads() == reads + 1);
    // A restored running average continues as the uninterrupted one would.
    runner::LossMeter resumed;
    resumed.restore(host, true, 0);
    meter.add(torch::tensor(2.0, torch::kFloat64), 4);
    resumed.add(torch::tensor(2.0, torch::kFloat64), 4);
    CHECK(resumed.read(comm, 11, 1).running == doctest::Approx(meter.read(comm, 11, 1).running).epsilon(1e-15));
    // A non-finite loss anywhere since the last read fails the run at the next one.
    meter.add(torch::tensor(NAN, torch::kFloat64), 4);
    meter.add(torch::tensor(1.0, torch::kFloat64), 4);
    CHECK_THROWS_WITH_AS(meter.read(comm, 13, 2),
                         doctest::Contains("train/batch_loss is not finite (0.250000, running average nan) in "
                                           "iterations 12..13 (epoch 2)"),
                         runner::Error);
  }

  TEST_CASE("parameters without a gradient this iteration: zeros, every bucket still launched") {
    FakeComm comm(2);
    auto used = torch::ones({10}).requires_grad_(true);
    auto unused = torch::ones({10}).requires_grad_(true);
    runner::GradReducer reducer({used, unused}, comm, 40);  // one bucket each
    reducer.prepare(0.5);
    (used * 3).sum().backward();
    reducer.finish();
    CHECK(comm.launched.size() == 2);
    CHECK(used.grad().eq(3.0).all().item<bool>());
    CHECK(unused.grad().defined());
    CHECK(unused.grad().abs().sum().item<double>() == 0);
    // Not even a backward (a rank with no samples): all buckets launched from finish().
    comm.launched.clear();
    reducer.prepare(0.0);
    reducer.finish();
    CHECK(comm.launched.size() == 2);
  }

  TEST_CASE("channels_last parameters get gradients in their own layout") {
    FakeComm comm(1);
    auto w = torch::randn({4, 3, 2, 2}).contiguous(torch::MemoryFormat::ChannelsLast).requires_grad_(true);
    runner::GradReducer reducer({w}, comm, 1 << 20);
    reducer.prepare(1.0);
    (w * w).sum().backward();
    reducer.finish();
    CHECK(w.grad().strides() == w.strides());
    CHECK(torch::allclose(w.grad(), 2 * w.detach()));
  }

  TEST_CASE("sync_batchnorm refuses BatchNorm layers it cannot synchronise") {
    FakeComm comm(2);
    torch::nn::Sequential plain(torch::nn::Conv2d(1, 2, 3), torch::nn::BatchNorm2d(2));
    CHECK_THROWS_WITH_AS(runner::enable_sync_batchnorm(comm, *plain.ptr(), "cfg.yaml:3:5"),
                         doctest::Contains("cfg.yaml:3:5: dist.sync_batchnorm: the model's BatchNorm layer(s) 1 are "
                                           "not runner::nn::BatchNorm2d"),
                         runner::ConfigError);
    torch::nn::Sequential ours(torch::nn::Conv2d(1, 2, 3), runner::nn::BatchNorm2d(2));
    auto guard = runner::enable_sync_batchnorm(comm, *ours.ptr(), "cfg.yaml:3:5");
    CHECK(guard != nullptr);
    FakeComm alone(1);  // one rank: nothing to synchronise
    CHECK(runner::enable_sync_batchnorm(alone, *ours.ptr(), "cfg.yaml:3:5") == nullptr);
    CHECK(runner::nn::detail::batchnorm_sync());
    guard.reset();
    CHECK(!runner::nn::detail::batchnorm_sync());
  }

  TEST_CASE("runner::nn::BatchNorm2d matches torch::nn::BatchNorm2d, with or without synchronisation") {
    torch::manual_seed(1);
    auto x = torch::randn({8, 3, 5, 5}) * 3 + 1;
    torch::nn::BatchNorm2d theirs(3);
    runner::nn::BatchNorm2d ours(3);
    CHECK(torch::allclose(theirs->forward(x), ours->forward(x), 1e-5, 1e-5));
    CHECK(torch::allclose(theirs->running_var, ours->running_var));
    CHECK(theirs->named_parameters().keys() == ours->named_parameters().keys());
    CHECK(theirs->named_buffers().keys() == ours->named_buffers().keys());
    // One "rank" with the synchronised path (world 1 all-reduce = identity).
    runner::nn::detail::set_batchnorm_sync([](const torch::Tensor& t) { return t.clone(); });
    runner::nn::BatchNorm2d synced(3);
    auto xs = x.clone().requires_grad_(true), xt = x.clone().requires_grad_(true);
    auto ys = synced->forward(xs);
    runner::nn::detail::set_batchnorm_sync(nullptr);
    torch::nn::BatchNorm2d fresh(3);
    auto yt = fresh->forward(xt);
    CHECK(torch::allclose(ys, yt, 1e-4, 1e-5));
    (ys * ys.detach().sin()).sum().backward();
    (yt * yt.detach().sin()).sum().backward();
    CHECK(torch::allclose(xs.grad(), xt.grad(), 1e-3, 1e-5));
    CHECK(torch::allclose(synced->running_mean, fresh->running_mean, 1e-5, 1e-6));
    CHECK(torch::allclose(synced->running_var, fresh->running_var, 1e-5, 1e-6));
    CHECK(synced->num_batches_tracked.item<int64_t>() == 1);
  }
}
