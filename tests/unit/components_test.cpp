// Every registered component builds from its defaults; schedulers and metrics compute
// the values they promise.
#include <ATen/autocast_mode.h>

#include <turbojpeg.h>

#include <cmath>
#include <fstream>

#include "config/config.hpp"
#include "data/loader.hpp"
#include "engine/build.hpp"
#include "engine/ema.hpp"
#include "engine/param_groups.hpp"
#include "device/host_read.hpp"
#include "engine/loss_scaler.hpp"
#include "engine/precision.hpp"
#include "metrics/metrics.hpp"
#include "../../plugins/optimizers/fused.hpp"
#include "../../plugins/optimizers/one_pass_sgd.hpp"
#include "logging/reports.hpp"
#include "runner/idx.hpp"
#include "util/parameters.hpp"
#include "test_util.hpp"

namespace {

// LibTorch's optimizer `Plain`, or the fused one, with the same options.
using OptimizerParams = std::vector<torch::Tensor>;
using OptimizerMaker = std::function<std::unique_ptr<torch::optim::Optimizer>(const OptimizerParams&, bool fused)>;
template <class Plain, class Fused, class Options>
OptimizerMaker optimizer_maker(Options o) {
  return [o](const OptimizerParams& p, bool fused) -> std::unique_ptr<torch::optim::Optimizer> {
    if (fused) return std::make_unique<Fused>(p, o);
    return std::make_unique<Plain>(p, o);
  };
}

// Values for required parameters (the only keys a config must give). A new component
// with a required parameter must add a line here, or the test below fails.
const std::map<std::string, std::string> kRequired = {
    {"optimizer/sgd/lr", "0.1"},
    {"scheduler/piecewise_linear/milestones", "[[0, 0.0], [1ep, 0.1], [2ep, 0.0]]"},
    {"scheduler/step/step_size", "1ep"},
    {"scheduler/multistep/milestones", "[5, 1ep]"},
    {"dataflow/mnist/root", "@IDX@"},
    {"dataflow/cifar10/root", "@CIFAR@"},
    {"dataflow/cifar100/root", "@CIFAR@"},
    {"dataflow/imagefolder/root", "@IMAGES@"},
    {"dataflow/text/files", "@TEXT@"},
    {"dataflow/tensors/train", "@ARRAYS@"},
    {"dataflow/tensors/val", "@ARRAYS@"},
};

// Tiny CIFAR-10 and CIFAR-100 binary sets (2 records per file) and a JPEG class folder
// (2 classes x 2 images per split), in the real formats.
std::string write_cifar_sets(const test::TempDir& d) {
  const auto root = d.path / "cifar";
  auto write = [](const std::filesystem::path& p, int label_bytes) {
    std::filesystem::create_directories(p.parent_path());
    std::ofstream f(p, std::ios::binary);
    for (int r = 0; r < 2; ++r) {
      for (int l = 0; l < label_bytes; ++l) f.put(static_cast<char>(r));
      for (int i = 0; i < 3072; ++i) f.put(static_cast<char>((i * 13 + r) & 0xFF));
    }
  };
  for (int b = 1; b <= 5; ++b) write(root / "cifar-10-batches-bin" / ("data_batch_" + std::to_string(b) + ".bin"), 1);
  write(root / "cifar-10-batches-bin" / "test_batch.bin", 1);
  write(root / "cifar-100-binary" / "train.bin", 2);
  write(root / "cifar-100-binary" / "test.bin", 2);
  return root.string();
}

std::string write_image_folder(const test::TempDir& d) {
  const auto root = d.path / "images";
  tjhandle tj = tjInitCompress();
  std::vector<uint8_t> px(40 * 30 * 3);
  for (size_t i = 0; i < px.size(); ++i) px[i] = static_cast<uint8_t>(i * 7);
  for (const char* split : {"train", "val"})
    for (const char* cls : {"cat", "dog"}) {
      std::filesystem::create_directories(root / split / cls);
      for (int i = 0; i < 2; ++i) {
        unsigned char* buf = nullptr;
        unsigned long size = 0;
        REQUIRE(tjCompress2(tj, px.data(), 40, 0, 30, TJPF_RGB, &buf, &size, TJSAMP_420, 90, 0) == 0);
        std::ofstream(root / split / cls / (std::to_string(i) + ".JPEG"), std::ios::binary)
            .write(reinterpret_cast<const char*>(buf), static_cast<std::streamsize>(size));
        tjFree(buf);
      }
    }
  tjDestroy(tj);
  return root.string();
}

// A tiny IDX data set in the MNIST layout.
std::string write_idx_set(const test::TempDir& d) {
  const auto root = d.path / "idx";
  std::filesystem::create_directories(root);
  for (const char* split : {"train", "t10k"}) {
    runner::IdxArray images{{20, 28, 28}, std::vector<uint8_t>(20 * 28 * 28)};
    for (size_t i = 0; i < images.data.size(); ++i) images.data[i] = static_cast<uint8_t>(i * 7);
    runner::IdxArray labels{{20}, std::vector<uint8_t>(20)};
    for (int i = 0; i < 20; ++i) labels.data[i] = static_cast<uint8_t>(i % 10);
    runner::write_idx((root / (std::string(split) + "-images-idx3-ubyte.gz")).string(), images, true);
    runner::write_idx((root / (std::string(split) + "-labels-idx1-ubyte")).string(), labels, false);
  }
  return root.string();
}

struct DataRoots {
  std::string idx, cifar, images, text, arrays;
};

// A .npy file (format 1.0) of `shape` with `descr` ('<f4', '<i8') and raw little-endian data.
void write_npy(const std::string& path, const std::string& descr, const std::vector<int64_t>& shape, const void* data,
               size_t bytes) {
  std::string dims;
  for (int64_t d : shape) dims += std::to_string(d) + ", ";
  std::string header = "{'descr': '" + descr + "', 'fortran_order': False, 'shape': (" + dims + "), }";
  header.resize(((header.size() + 11) / 64 + 1) * 64 - 11, ' ');
  header += '\n';
  std::ofstream f(path, std::ios::binary);
  f << "\x93NUMPY" << '\x01' << '\x00';
  f.put(static_cast<char>(header.size() & 0xFF)).put(static_cast<char>(header.size() >> 8));
  f << header;
  f.write(static_cast<const char*>(data), static_cast<std::streamsize>(bytes));
}

// x.npy: 4 samples of 3 float32; y.npy: their classes 0, 1, 2, 1.
std::string write_arrays(const test::TempDir& d) {
  const float x[12] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11};
  const int64_t y[4] = {0, 1, 2, 1};
  write_npy((d.path / "x.npy").string(), "<f4", {4, 3}, x, sizeof x);
  write_npy((d.path / "y.npy").string(), "<i8", {4}, y, sizeof y);
  return "{input: " + (d.path / "x.npy").string() + ", target: " + (d.path / "y.npy").string() + "}";
}

std::string block_for(const runner::Component& c, const DataRoots& roots) {
  std::string block = "{name: " + c.name;
  for (const auto& p : c.schema.params()) {
    if (!p.is_required) continue;
    auto it = kRequired.find(std::string(runner::kind_name(c.kind)) + "/" + c.name + "/" + p.name);
    if (it == kRequired.end()) {
      FAIL("no test value for required parameter " << runner::kind_name(c.kind) << "/" << c.name << "/" << p.name);
      continue;
    }
    std::string v = it->second;
    if (v == "@IDX@") v = roots.idx;
    if (v == "@CIFAR@") v = roots.cifar;
    if (v == "@ARRAYS@") v = roots.arrays;
    if (v == "@TEXT@") v = roots.text + ", block_size: 8, train_samples: 8, batch_size: 4";
    if (v == "@IMAGES@") v = roots.images + ", image_size: 32, resize_size: 36";  // a small mlp input
    block += ", " + p.name + ": " + v;
  }
  return block + "}";
}

}  // namespace

TEST_SUITE("components") {
  // Each component with partners of its task: image classification, or a language model.
  TEST_CASE("every registered component builds from its defaults and works") {
    const auto& reg = test::builtin_registry();
    test::TempDir d;
    std::string text;  // 400 characters: 40 of validation text, 4 blocks of 8 + 1
    for (int i = 0; i < 8; ++i) text += "the quick brown fox jumps over the lazy dog. \u00e9t\u00e9\n";
    const DataRoots roots{write_idx_set(d), write_cifar_sets(d), write_image_folder(d), d.write("text.txt", text),
                          write_arrays(d)};
    const char* kinds[] = {"dataflow", "model", "optimizer", "criterion", "scheduler"};
    int built = 0;
    for (int k = 0; k < runner::kNumSingleKinds; ++k) {
      for (const runner::Component* c : reg.components(static_cast<runner::Kind>(k))) {
        CAPTURE(c->name);
        const bool text = c->name == "text" || c->name == "gpt", pixels = c->name == "shapes" || c->name == "unet";
        std::map<std::string, std::string> blocks = {
            {"dataflow", "{name: synthetic, shape: [3, 32, 32], train_size: 64, val_size: 16, batch_size: 16}"},
            {"model", text     ? "{name: gpt, layers: 1, heads: 2, width: 8}"
                      : pixels ? "{name: unet, width: 4}"
                               : "mlp"},
            {"optimizer", "{name: sgd, lr: 0.1}"},
            {"criterion", "cross_entropy"},
            {"scheduler", "constant"}};
        if (text) blocks["dataflow"] = block_for(*reg.find(runner::Kind::Dataflow, "text"), roots);
        if (pixels) blocks["dataflow"] = "{name: shapes, image_size: 16, train_size: 4, val_size: 2}";
        blocks[kinds[k]] = block_for(*c, roots);
        std::string config = "num_epochs: 2\n";
        for (const auto& [key, b] : blocks) config += key + ": " + b + "\n";
        const auto f = d.write("cfg.yaml", config);
        runner::RunConfig rc = runner::resolve_config(runner::load_config(f, {}), f, reg);
        runner::Components built_c = runner::build_components(rc, reg, runner::DataflowContext{1, 0, 1});
        auto& df = built_c.dataflow;
        REQUIRE(df.train);
        runner::LoaderOptions lo;
        lo.global_batch = 2;
        lo.num_workers = 0;
        runner::Loader loader(df.train, lo);
        loader.start_epoch(1);
        runner::Batch batch;
        REQUIRE(loader.next(batch));
        const torch::Tensor& target = batch.data.at("target");
        const torch::Tensor labelled = target.masked_select(target.ne(-100));  // -100: ignored (shapes' outlines)
        CHECK(labelled.numel() > 0);
        CHECK(labelled.min().item<int64_t>() >= 0);
        CHECK(labelled.max().item<int64_t>() < df.num_classes);
        const runner::TensorDict outputs = built_c.model->forward_batch(batch.data);
        const torch::Tensor& logits = outputs.at("logits");
        std::vector<int64_t> want = {2, df.num_classes};  // [N, C, ...target dims]
        for (int64_t i = 1; i < target.dim(); ++i) want.push_back(target.size(i));
        CHECK(logits.sizes().vec() == want);
        built_c.criterion->loss(outputs, batch.data).backward();
        built_c.optimizer->step();
        auto sched = runner::build_scheduler(rc, reg, runner::SchedulerContext{built_c.base_lr, 10, 20});
        CHECK(std::isfinite(sched->lr(0)));
        CHECK(std::isfinite(sched->lr(19)));
        ++built;
      }
    }
    CHECK(built == 29);
  }

  namespace {
  std::shared_ptr<runner::Model> make_model(const std::string& name, const std::string& params,
                                            std::vector<int64_t> input, int64_t classes) {
    const auto& reg = test::builtin_registry();
    const runner::Component* c = reg.find(runner::Kind::Model, name);
    REQUIRE(c != nullptr);
    YAML::Node p = YAML::Load(params);
    if (!p.IsMap()) p = YAML::Node(YAML::NodeType::Map);
    for (const auto& spec : c->schema.params())  // defaults, as the config layer fills them
      if (!p[spec.name] && spec.default_value) p[spec.name] = spec.default_value;
    return std::get<runner::ModelFactory>(c->factory)(runner::Params(p, "model"), runner::ModelContext{input, classes});
  }
  int64_t count_params(const runner::Model& m) {
    int64_t n = 0;
    for (const auto& t : m.parameters()) n += t.numel();
    return n;
  }
  }  // namespace

  TEST_CASE("models have their architectures' published parameter counts") {
    // torchvision.models.resnet*(num_classes=1000); He et al. 2016 CIFAR ResNets (option A,
    // as counted by akamaster/pytorch_resnet_cifar10); cifar10-fast's ResNet-9.
    struct Case {
      const char* name;
      std::vector<int64_t> input;
      int64_t classes;
      int64_t params;
    };
    const Case cases[] = {
        {"resnet8", {1, 28, 28}, 10, 77754},          {"resnet18", {3, 224, 224}, 1000, 11689512},
        {"resnet34", {3, 224, 224}, 1000, 21797672},  {"resnet50", {3, 224, 224}, 1000, 25557032},
        {"resnet101", {3, 224, 224}, 1000, 44549160}, {"resnet20", {3, 32, 32}, 10, 269722},
        {"resnet56", {3, 32, 32}, 10, 853018},        {"resnet9", {3, 32, 32}, 10, 6573120},
    };
    for (const Case& c : cases) {
      CAPTURE(c.name);
      CHECK(count_params(*make_model(c.name, "{}", c.input, c.classes)) == c.params);
    }
    // ResNet-18 for CIFAR-10 as the seed recipe builds it: torchvision's with 10 outputs.
    CHECK(count_params(*make_model("resnet18", "{}", {3, 32, 32}, 10)) == 11181642);
  }

  TEST_CASE("ImageNet ResNets carry torchvision's state-dict names") {
    auto m = make_model("resnet50", "{}", {3, 224, 224}, 1000);
    std::vector<std::string> names;
    for (const auto& item : m->named_parameters()) names.push_back(item.key());
    for (const auto& item : m->named_buffers()) names.push_back(item.key());
    CHECK(names.size() == 320);  // len(torchvision.models.resnet50().state_dict())
    for (const char* key : {"conv1.weight", "bn1.running_mean", "layer1.0.conv1.weight", "layer1.0.downsample.0.weight",
                            "layer1.0.downsample.1.num_batches_tracked", "layer3.5.bn3.bias", "layer4.2.conv3.weight",
                            "fc.weight", "fc.bias"})
      CHECK_MESSAGE(std::find(names.begin(), names.end(), key) != names.end(), key);
    auto r18 = make_model("resnet18", "{}", {3, 224, 224}, 1000);
    CHECK(r18->named_parameters().size() + r18->named_buffers().size() == 122);
    // zero_init_residual: the last BatchNorm of every block starts at 0.
    auto z = make_model("resnet50", "{zero_init_residual: true}", {3, 64, 64}, 10);
    for (const auto& item : z->named_parameters())
      if (item.key().find("bn3.weight") != std::string::npos) CHECK(item.value().abs().sum().item<double>() == 0);
    auto shortcut_b = make_model("resnet20", "{shortcut: B}", {3, 32, 32}, 10);
    CHECK(count_params(*shortcut_b) > 269722);
  }

  TEST_CASE("every model trains a step in float32 and in bfloat16 autocast, NCHW and channels_last") {
    for (const char* name : {"resnet8", "resnet18", "resnet20", "resnet9", "resnet50"}) {
      for (const char* amp : {"none", "bf16"}) {
        for (bool channels_last : {false, true}) {
          CAPTURE(name);
          CAPTURE(amp);
          CAPTURE(channels_last);
          torch::manual_seed(1);
          auto m = make_model(name, "{}", {3, 32, 32}, 10);
          torch::Tensor x = torch::randn({4, 3, 32, 32});
          if (channels_last) {
            runner::to_channels_last(*m);
            for (const auto& p : m->parameters())
              if (p.dim() == 4) CHECK(p.is_contiguous(at::MemoryFormat::ChannelsLast));
            x = x.contiguous(at::MemoryFormat::ChannelsLast);
          }
          torch::Tensor logits;
          {
            runner::AutocastScope autocast(amp, torch::kCPU);
            logits = m->forward(x);
          }
          CHECK((logits.scalar_type() == (std::string(amp) == "bf16" ? torch::kBFloat16 : torch::kFloat32)));
          torch::Tensor loss = torch::nn::functional::cross_entropy(logits.to(torch::kFloat32),
                                                                    torch::tensor({0, 1, 2, 3}, torch::kInt64));
          loss.backward();
          CHECK(std::isfinite(loss.item<double>()));
          for (const auto& p : m->parameters()) {
            REQUIRE(p.grad().defined());
            CHECK((p.grad().scalar_type() == torch::kFloat32));  // master weights stay float32
          }
        }
      }
    }
    CHECK_FALSE(at::autocast::is_autocast_enabled(at::kCPU));  // scopes restore the previous state
  }

  TEST_CASE("channels_last with one input channel: the stem's weight is restrided, so its output is NHWC") {
    // A 16x1x3x3 weight is contiguous in both layouts; `contiguous(ChannelsLast)` would keep its
    // NCHW strides and oneDNN would run the stem (and convert every later layer) in NCHW.
    torch::manual_seed(1);
    auto m = make_model("resnet8", "{}", {1, 28, 28}, 10);
    runner::to_channels_last(*m);
    const auto named = m->named_parameters();
    const torch::Tensor w = named["conv1.weight"];
    CHECK(w.strides().vec() == std::vector<int64_t>{9, 1, 3, 1});
    CHECK(w.suggest_memory_format() == at::MemoryFormat::ChannelsLast);
    torch::NoGradGuard no_grad;
    const torch::Tensor x = torch::randn({2, 1, 28, 28}).contiguous(at::MemoryFormat::ChannelsLast);
    const torch::Tensor y = torch::conv2d(x, w, {}, 1, 1);
    CHECK(y.suggest_memory_format() == at::MemoryFormat::ChannelsLast);
  }

  TEST_CASE("the fp16 loss scaler (on CPU tensors) skips overflowing steps, backs off, grows, checkpoints") {
    runner::LossScaler::Options o;
    o.init_scale = 1024;
    o.growth_interval = 3;
    runner::LossScaler s(true, torch::kCPU, o);
    torch::Tensor w = torch::ones({2}, torch::requires_grad());
    auto step = [&](double g) {  // a backward whose true gradient is g
      w.mutable_grad() = torch::full({2}, g * s.scale());
      const bool finite = s.unscale({w});
      s.update();
      return finite;
    };
    CHECK(s.scale_loss(torch::ones({1})).item<double>() == 1024);
    CHECK(step(0.5));
    CHECK(w.grad()[0].item<double>() == doctest::Approx(0.5));  // unscaled
    CHECK_FALSE(step(INFINITY));
    CHECK(s.scale() == 512);
    CHECK_FALSE(step(NAN));
    CHECK(s.scale() == 256);
    CHECK(s.skipped_steps() == 2);
    CHECK(step(1));
    CHECK(step(1));
    CHECK(s.scale() == 256);
    CHECK(step(1));
    CHECK(s.scale() == 512);  // grew after 3 finite steps in a row
    CHECK(step(1));
    runner::LossScaler resumed(true, torch::kCPU, o);
    resumed.load_state(YAML::Load(YAML::Dump(s.state())));
    CHECK(resumed.scale() == 512);
    CHECK(resumed.skipped_steps() == 2);
    CHECK(resumed.state()["good_steps"].as<int>() == 1);
    runner::LossScaler off(false);
    CHECK(off.scale_loss(torch::ones({1})).item<double>() == 1);
    w.mutable_grad() = torch::full({2}, INFINITY);
    CHECK(off.unscale({w}));  // disabled: never skips
    // Gradients of two dtypes are checked and unscaled together; one host read per unscale.
    runner::LossScaler mixed(true, torch::kCPU, o);
    torch::Tensor h = torch::ones({3}, torch::dtype(torch::kFloat64).requires_grad(true));
    w.mutable_grad() = torch::full({2}, 2048.0);
    h.mutable_grad() = torch::full({3}, 3072.0, torch::kFloat64);
    const int64_t reads = runner::device::host_reads();
    CHECK(mixed.unscale({w, h}));
    CHECK(runner::device::host_reads() == reads + 1);
    CHECK(w.grad()[0].item<double>() == 2);
    CHECK(h.grad()[2].item<double>() == 3);
    h.mutable_grad()[1] = NAN;
    CHECK_FALSE(mixed.unscale({w, h}));
  }

  // On the CPU always, and on CUDA where there is a GPU (tools/gpu/check.sh runs this case there:
  // ATen's fused kernels for CUDA are other code than the CPU's).
  TEST_CASE("fused sgd/adam/adamw equal torch::optim's per-parameter step, and resume from their state") {
    namespace rp = runner::plugins;
    namespace to = torch::optim;
    using Params = OptimizerParams;
    using Make = OptimizerMaker;
    auto sgd = optimizer_maker<to::SGD, rp::FusedSGD, to::SGDOptions>;
    auto adam = optimizer_maker<to::Adam, rp::FusedAdam, to::AdamOptions>;
    auto adamw = optimizer_maker<to::AdamW, rp::FusedAdamW, to::AdamWOptions>;
    const std::vector<std::pair<std::string, Make>> cases{
        {"sgd nesterov wd", sgd(to::SGDOptions(0.1).momentum(0.9).nesterov(true).weight_decay(5e-4))},
        {"sgd plain", sgd(to::SGDOptions(0.05))},
        {"sgd dampening", sgd(to::SGDOptions(0.1).momentum(0.5).dampening(0.1).weight_decay(1e-2))},
        {"adam wd", adam(to::AdamOptions(0.01).weight_decay(1e-3))},
        {"adam amsgrad", adam(to::AdamOptions(0.01).amsgrad(true))},
        {"adamw", adamw(to::AdamWOptions(0.01).weight_decay(0.05))},
        {"adamw amsgrad betas", adamw(to::AdamWOptions(0.01).amsgrad(true).betas({0.8, 0.99}))}};
    auto copy = [](const Params& ps) {
      Params out;
      for (const auto& p : ps) out.push_back(p.detach().clone().requires_grad_(true));
      return out;
    };
    // Gradients of step i, the same for every copy; a float64 parameter makes a second
    // (device, dtype) group, and parameter 1 has no gradient at the first step.
    auto set_grads = [](Params& ps, int i) {
      for (size_t k = 0; k < ps.size(); ++k) {
        if (k == 1 && i == 0) {
          ps[k].mutable_grad() = torch::Tensor();
          continue;
        }
        torch::manual_seed(100 * i + static_cast<int>(k));
        ps[k].mutable_grad() = torch::randn(ps[k].sizes(), ps[k].options().requires_grad(false));
      }
    };
    std::vector<torch::Device> devices{torch::kCPU};
    if (torch::cuda::is_available()) devices.emplace_back(torch::kCUDA, 0);
    for (const torch::Device& dev : devices) {
      for (const auto& [what, make] : cases) {
        CAPTURE(dev.str());
        CAPTURE(what);
        torch::manual_seed(7);
        const Params init{torch::randn({16, 8}).to(dev), torch::randn({8}).to(dev),
                          torch::randn({4, 3, 3, 3}).to(dev).contiguous(at::MemoryFormat::ChannelsLast),
                          torch::randn({5}, torch::kFloat64).to(dev)};
        // tensor_lr and tensor_resumed: the learning rate from device tensors (cuda_graph's
        // CapturableOptimizer), refreshed before each step as the rate changes.
        Params ref = copy(init), fused = copy(init), resumed = copy(init), tensor_lr = copy(init),
               tensor_resumed = copy(init);
        auto opt_ref = make(ref, false), opt_fused = make(fused, true), opt_resumed = make(resumed, true),
             opt_tensor = make(tensor_lr, true), opt_tensor_resumed = make(tensor_resumed, true);
        const auto capturable = [](torch::optim::Optimizer& o) {
          auto* c = dynamic_cast<runner::CapturableOptimizer*>(&o);
          REQUIRE(c != nullptr);
          return c;
        };
        capturable(*opt_tensor)->lr_from_tensors();
        capturable(*opt_tensor_resumed)->lr_from_tensors();
        const double lr0 = opt_ref->param_groups()[0].options().get_lr();
        const auto save_and_load = [&](std::unique_ptr<torch::optim::Optimizer>& opt, Params& ps, bool tensors) {
          torch::serialize::OutputArchive out;  // a checkpoint: saved, loaded into a fresh optimizer
          opt->save(out);
          std::ostringstream bytes;
          out.save_to(bytes);
          ps = copy(ps);
          opt = make(ps, true);
          if (tensors) capturable(*opt)->lr_from_tensors();
          torch::serialize::InputArchive in;
          const std::string b = bytes.str();
          in.load_from(b.data(), b.size());
          opt->load(in);
        };
        for (int i = 0; i < 6; ++i) {
          for (auto* o : {&opt_ref, &opt_fused, &opt_resumed, &opt_tensor, &opt_tensor_resumed})
            (*o)->param_groups()[0].options().set_lr(lr0 * (1.0 - 0.1 * i));  // as a scheduler would
          capturable(*opt_tensor)->refresh_lr(), capturable(*opt_tensor_resumed)->refresh_lr();
          for (Params* ps : {&ref, &fused, &resumed, &tensor_lr, &tensor_resumed}) set_grads(*ps, i);
          for (auto* o : {&opt_ref, &opt_fused, &opt_resumed, &opt_tensor, &opt_tensor_resumed}) (*o)->step();
          if (i == 2)
            save_and_load(opt_resumed, resumed, false), save_and_load(opt_tensor_resumed, tensor_resumed, true);
        }
        for (size_t k = 0; k < init.size(); ++k) {
          CAPTURE(k);
          CHECK(torch::allclose(fused[k], ref[k], 1e-5, 1e-6));
          CHECK(torch::equal(resumed[k], fused[k]));   // the resume is exact
          CHECK(!torch::allclose(fused[k], init[k]));  // it did step
          // A float32 learning rate: the same rule to float tolerance; its resume exact too (the
          // step counts a checkpoint saves come from the device).
          CHECK(torch::allclose(tensor_lr[k], ref[k], 1e-5, 1e-6));
          CHECK(torch::equal(tensor_resumed[k], tensor_lr[k]));
        }
      }
    }
    // The built-in optimizers offer it as `fused`: null (the default) fuses on CUDA only, where
    // tools/gpu/check.sh compares it with the per-parameter step (opt-in on the CPU, PyTorch's
    // default there; README, Performance, says why); true and false are obeyed anywhere.
    const auto& reg = test::builtin_registry();
    const YAML::Node sgd_values =
        YAML::Load("{lr: 0.1, momentum: 0.9, dampening: 0, nesterov: false, weight_decay: 0}");
    for (const char* name : {"sgd", "adam", "adamw"}) {
      CAPTURE(name);
      const runner::Component* c = reg.find(runner::Kind::Optimizer, name);
      const runner::ParamSpec* fused = c->schema.find("fused");
      REQUIRE(fused != nullptr);
      CHECK(fused->default_value.IsNull());
      CHECK(fused->nullable);
      for (const torch::Device& dev : devices) {
        for (const char* given : {"~", "true", "false"}) {
          CAPTURE(dev.str());
          CAPTURE(given);
          YAML::Node values = std::string(name) == "sgd" ? YAML::Clone(sgd_values) : YAML::Load("{lr: 0.01}");
          if (std::string(name) != "sgd") {
            values["betas"] = std::vector<double>{0.9, 0.999};
            values["eps"] = 1e-8;
            values["weight_decay"] = 0.0;
            values["amsgrad"] = false;
          }
          values["fused"] = YAML::Load(given);
          const std::vector<torch::Tensor> params{torch::zeros({3}, torch::TensorOptions(dev).requires_grad(true))};
          auto opt = std::get<runner::OptimizerFactory>(c->factory)(runner::Params(values, "optimizer"), params);
          const bool is_fused = dynamic_cast<rp::FusedSGD*>(opt.get()) || dynamic_cast<rp::FusedAdam*>(opt.get()) ||
                                dynamic_cast<rp::FusedAdamW*>(opt.get());
          const bool expected = std::string(given) == "~" ? dev.is_cuda() : std::string(given) == "true";
          CHECK(is_fused == expected);
          if (std::string(name) == "sgd" && !expected) CHECK(dynamic_cast<rp::OnePassSGD*>(opt.get()) != nullptr);
        }
      }
    }
  }

  // The built-in sgd's CPU step: torch::optim::SGD's numbers exactly, not to a tolerance.
  TEST_CASE("one-pass sgd equals torch::optim::SGD bit for bit, through a resume, on the parameters it takes") {
    namespace to = torch::optim;
    const std::vector<std::pair<std::string, to::SGDOptions>> cases{
        {"nesterov wd", to::SGDOptions(0.1).momentum(0.9).nesterov(true).weight_decay(5e-4)},
        {"plain", to::SGDOptions(0.05)},
        {"wd only", to::SGDOptions(0.07).weight_decay(1e-2)},
        {"momentum", to::SGDOptions(0.03).momentum(0.9)},
        {"dampening wd", to::SGDOptions(0.1).momentum(0.5).dampening(0.1).weight_decay(1e-2)}};
    for (const auto& [what, options] : cases) {
      CAPTURE(what);
      torch::manual_seed(11);
      // Sizes with vector tails, one above ATen's grain (split over threads at an odd index),
      // channels_last, a scalar; the float64 one and the one whose gradient comes in another
      // layout step through the operators.
      const std::vector<torch::Tensor> init{torch::randn({257, 131}),
                                            torch::randn({7}),
                                            torch::randn({6, 5, 3, 3}).contiguous(at::MemoryFormat::ChannelsLast),
                                            torch::randn({}),
                                            torch::randn({33}, torch::kFloat64),
                                            torch::randn({9, 4})};
      auto copy = [](const std::vector<torch::Tensor>& ps) {
        std::vector<torch::Tensor> out;
        for (const auto& p : ps) out.push_back(p.detach().clone().requires_grad_(true));
        return out;
      };
      auto ref = copy(init), one = copy(init), resumed = copy(init);
      to::SGD opt_ref(ref, options);
      auto opt_one = std::make_unique<runner::plugins::OnePassSGD>(one, options);
      auto opt_resumed = std::make_unique<runner::plugins::OnePassSGD>(resumed, options);
      auto set_grads = [&](std::vector<torch::Tensor>& ps, int i) {
        for (size_t k = 0; k < ps.size(); ++k) {
          torch::manual_seed(100 * i + static_cast<int>(k));
          torch::Tensor g = torch::randn(ps[k].sizes(), ps[k].options().requires_grad(false));
          // In the parameter's layout, as AccumulateGrad makes it; the last one column-major.
          g = k == 5 ? g.t().contiguous().t() : torch::empty_like(ps[k].detach()).copy_(g);
          ps[k].mutable_grad() = (k == 1 && i == 0) ? torch::Tensor() : g;
        }
      };
      for (int i = 0; i < 7; ++i) {
        for (auto* o : {static_cast<to::Optimizer*>(&opt_ref), static_cast<to::Optimizer*>(opt_one.get()),
                        static_cast<to::Optimizer*>(opt_resumed.get())})
          o->param_groups()[0].options().set_lr(options.lr() * (1.0 - 0.1 * i));
        for (auto* ps : {&ref, &one, &resumed}) set_grads(*ps, i);
        opt_ref.step(), opt_one->step(), opt_resumed->step();
        if (i == 3) {  // a checkpoint: saved, loaded into a fresh optimizer over copies
          torch::serialize::OutputArchive out;
          opt_resumed->save(out);
          std::ostringstream bytes;
          out.save_to(bytes);
          resumed = copy(resumed);
          opt_resumed = std::make_unique<runner::plugins::OnePassSGD>(resumed, options);
          torch::serialize::InputArchive in;
          const std::string b = bytes.str();
          in.load_from(b.data(), b.size());
          opt_resumed->load(in);
        }
      }
      for (size_t k = 0; k < init.size(); ++k) {
        CAPTURE(k);
        CHECK(torch::equal(one[k], ref[k]));
        // LibTorch updates through p.data(), which leaves the parameter's version as it was
        CHECK(one[k]._version() == ref[k]._version());
        CHECK(torch::equal(resumed[k], ref[k]));
        CHECK(!torch::equal(one[k], init[k]));
      }
      // 4 float32 parameters with gradients in their own layout, 7 steps (parameter 1 has none at
      // the first), and 3 more steps after the resume.
      CHECK(opt_one->kernel_steps() == 4 * 7 - 1);
      CHECK(opt_resumed->kernel_steps() == 4 * 3);
    }
  }

  TEST_CASE("optimizer.no_decay: the chosen parameters step without weight decay, the rest with it") {
    struct Net : torch::nn::Module {
      torch::nn::Conv2d conv{torch::nn::Conv2dOptions(2, 3, 3).bias(true)};
      torch::nn::BatchNorm2d bn{3};
      torch::nn::Linear fc{3, 2};
      Net() {
        register_module("conv", conv);
        register_module("bn", bn);
        register_module("fc", fc);
      }
    };
    auto run = [](const std::vector<std::string>& rules, bool fused) {
      torch::manual_seed(1);
      Net net;
      std::map<std::string, torch::Tensor> before;
      for (const auto& p : net.named_parameters()) before[p.key()] = p.value().detach().clone();
      const auto opts = torch::optim::SGDOptions(0.1).momentum(0.9).weight_decay(0.5);
      std::unique_ptr<torch::optim::Optimizer> opt;
      if (fused)
        opt = std::make_unique<runner::plugins::FusedSGD>(net.parameters(), opts);
      else
        opt = std::make_unique<torch::optim::SGD>(net.parameters(), opts);
      std::vector<runner::NoDecayRule> rs;
      for (const auto& r : rules) rs.push_back({r, nullptr});
      const std::string line = runner::apply_no_decay(*opt, runner::select_no_decay(net, rs, "net"), "test.yaml:1:1");
      for (auto& p : net.parameters()) p.mutable_grad() = torch::zeros_like(p);  // only the decay moves a weight
      opt->step();
      std::map<std::string, bool> moved;
      for (const auto& p : net.named_parameters()) moved[p.key()] = !torch::equal(p.value(), before[p.key()]);
      return std::make_pair(moved, line);
    };
    for (bool fused : {false, true}) {
      CAPTURE(fused);
      auto [moved, line] = run({"bias", "norm"}, fused);
      CHECK(moved["conv.weight"]);
      CHECK(moved["fc.weight"]);
      for (const char* k : {"conv.bias", "fc.bias", "bn.weight", "bn.bias"}) CHECK_MESSAGE(!moved[k], k);
      CHECK(line == "4 parameter tensors (11 values) without weight decay, 2 (60) with");
      auto [moved1d, line1d] = run({"1d"}, fused);
      CHECK(moved1d == moved);
      auto [by_name, l2] = run({"fc.weight", "conv.*"}, fused);
      CHECK(!by_name["fc.weight"]);
      CHECK(!by_name["conv.weight"]);
      CHECK(!by_name["conv.bias"]);
      CHECK(by_name["bn.weight"]);  // not named: decayed
      CHECK(by_name["fc.bias"]);
      auto [all, l3] = run({"*"}, fused);  // everything excluded: the one group loses its decay
      for (const auto& [k, m] : all) CHECK_MESSAGE(!m, k);
    }
    Net net;
    CHECK_THROWS_WITH_AS(
        runner::select_no_decay(net, {{"biass", nullptr}}, "net"),
        doctest::Contains("'biass' selects no trainable parameter of model 'net'; did you mean 'bias'"),
        runner::ConfigError);
  }

  TEST_CASE("ema: the average follows decay, swaps in and out, and checkpoints exactly") {
    torch::manual_seed(2);
    torch::nn::Sequential net(torch::nn::Linear(3, 4), torch::nn::BatchNorm1d(4));
    runner::Ema ema(*net, 0.75);
    const torch::Tensor w0 = net[0]->as<torch::nn::Linear>()->weight.detach().clone();
    {
      torch::NoGradGuard g;
      net[0]->as<torch::nn::Linear>()->weight.add_(1.0);
    }
    ema.update();  // avg = 0.75 * w0 + 0.25 * (w0 + 1)
    {
      runner::Ema::Swap swap(ema);
      CHECK(torch::allclose(net[0]->as<torch::nn::Linear>()->weight, w0 + 0.25));
    }
    CHECK(torch::allclose(net[0]->as<torch::nn::Linear>()->weight, w0 + 1));  // the weights are back
    torch::serialize::OutputArchive out;
    ema.save(out);
    std::ostringstream bytes;
    out.save_to(bytes);
    runner::Ema other(*net, 0.75);  // starts from the current weights
    torch::serialize::InputArchive in;
    const std::string b = bytes.str();
    in.load_from(b.data(), b.size());
    CHECK(other.load(in));
    runner::Ema::Swap swap(other);
    CHECK(torch::allclose(net[0]->as<torch::nn::Linear>()->weight, w0 + 0.25));
    // The integer buffer (num_batches_tracked) is the model's own, not averaged or swapped.
    CHECK(net[1]->as<torch::nn::BatchNorm1d>()->num_batches_tracked.item<int64_t>() == 0);
    {
      torch::NoGradGuard g;
      net[1]->as<torch::nn::BatchNorm1d>()->num_batches_tracked.fill_(7);
    }
    runner::Ema::Swap again(other);
    CHECK(net[1]->as<torch::nn::BatchNorm1d>()->num_batches_tracked.item<int64_t>() == 7);
  }

  TEST_CASE("schedulers give the documented learning rates") {
    const auto& reg = test::builtin_registry();
    auto make = [&](const std::string& name, const std::string& yaml, double base = 0.1) {
      auto f = std::get<runner::SchedulerFactory>(reg.find(runner::Kind::Scheduler, name)->factory);
      return f(runner::Params(YAML::Load(yaml), "scheduler"), runner::SchedulerContext{base, 10, 30});
    };
    auto pw = make("piecewise_linear", "{milestones: [[0, 0.0], [1ep, 0.1], [3ep, 0.0]]}");
    CHECK(pw->lr(0) == doctest::Approx(0.0));
    CHECK(pw->lr(5) == doctest::Approx(0.05));
    CHECK(pw->lr(10) == doctest::Approx(0.1));
    CHECK(pw->lr(20) == doctest::Approx(0.05));
    CHECK(pw->lr(30) == doctest::Approx(0.0));
    CHECK(pw->lr(99) == doctest::Approx(0.0));
    auto cos = make("cosine", "{warmup: 1ep, warmup_start_lr: 0.0, min_lr: 0.0}");
    CHECK(cos->lr(0) == doctest::Approx(0.0));
    CHECK(cos->lr(5) == doctest::Approx(0.05));
    CHECK(cos->lr(10) == doctest::Approx(0.1));
    CHECK(cos->lr(20) == doctest::Approx(0.05));
    CHECK(cos->lr(30) == doctest::Approx(0.0));
    auto step = make("step", "{step_size: 10, gamma: 0.5}");
    CHECK(step->lr(9) == doctest::Approx(0.1));
    CHECK(step->lr(10) == doctest::Approx(0.05));
    CHECK(step->lr(25) == doctest::Approx(0.025));
    auto ms = make("multistep", "{milestones: [5, 2ep], gamma: 0.1}");
    CHECK(ms->lr(4) == doctest::Approx(0.1));
    CHECK(ms->lr(5) == doctest::Approx(0.01));
    CHECK(ms->lr(20) == doctest::Approx(0.001));
    CHECK(make("constant", "{factor: 2.0}")->lr(7) == doctest::Approx(0.2));
    // Bad milestones are reported against the key.
    try {
      make("piecewise_linear", "{milestones: [[0, 0.0], [1epoch, 0.1]]}");
      FAIL("expected ParamError");
    } catch (const runner::ParamError& e) {
      CHECK(e.key() == "milestones");
      CHECK(std::string(e.what()).find("1epoch") != std::string::npos);
    }
    CHECK_THROWS_AS(make("piecewise_linear", "{milestones: [[2ep, 0.0], [1ep, 0.1]]}"), runner::ParamError);
  }

  TEST_CASE("the classification adapter: forward(x), operator()(logits, targets) and get(float*, int64_t*)") {
    struct Doubler : runner::Model {
      torch::Tensor forward(torch::Tensor x) override { return x * 2; }
    };
    struct Abs : runner::Criterion {
      torch::Tensor operator()(const torch::Tensor& logits, const torch::Tensor& t) override {
        return (logits - t).abs().mean();
      }
    };
    struct Images : runner::Dataset {
      int64_t size() const override { return 1; }
      std::vector<int64_t> sample_shape() const override { return {1, 2, 2}; }
      void get(int64_t, float* out, int64_t* t, runner::Rng&) const override { out[0] = 1, *t = 3; }
    };
    Doubler m;
    Abs c;
    const runner::TensorDict batch = {{"input", torch::ones({2, 3})}, {"target", torch::zeros({2, 3})}};
    const runner::TensorDict out = m.forward_batch(batch);
    REQUIRE(out.count("logits"));
    CHECK(out.at("logits").sum().item<float>() == 12.0f);
    CHECK(m.inputs() == std::vector<std::string>{"input"});
    CHECK(c.loss(out, batch).item<float>() == 2.0f);
    CHECK(c.inputs() == std::vector<std::string>{"target"});
    const runner::Fields f = Images().fields();
    REQUIRE(f.size() == 2);
    CHECK((f[0].name == "input" && f[0].dtype == torch::kFloat32 && f[0].shape == std::vector<int64_t>{1, 2, 2}));
    CHECK((f[1].name == "target" && f[1].dtype == torch::kInt64 && f[1].shape.empty()));
    // What a component that overrides neither side says.
    struct Nothing : runner::Model {};
    Nothing n;
    CHECK_THROWS_WITH(n.forward_batch(batch), "the model overrides neither forward(x) nor forward_batch(batch)");
    CHECK_THROWS_WITH(m.forward_batch({{"tokens", torch::ones({1})}}),
                      "the model needs 'input', which is not there (there are: tokens)");
    struct NoData : runner::Dataset {
      int64_t size() const override { return 1; }
    };
    CHECK_THROWS_AS(NoData().fields(), runner::Error);
  }

  TEST_CASE("a parameter registered under two names (tied weights) counts once") {
    struct Tied : torch::nn::Module {
      Tied() {
        auto w = register_parameter("embedding", torch::randn({5, 3}));
        register_parameter("head", w);
        register_parameter("bias", torch::zeros({5}));
      }
    };
    Tied t;
    CHECK(t.parameters().size() == 3);  // LibTorch lists the shared tensor twice
    const auto unique = runner::unique_named_parameters(t);
    REQUIRE(unique.size() == 2);
    CHECK(unique[0].first == "embedding");
    CHECK(unique[1].first == "bias");
    CHECK(runner::count_parameters(t) == 20);
  }

  TEST_CASE("accuracy per position ignores targets outside [0, C); mean IoU and bits per char by hand") {
    // Logits [N=1, C=3, T=5]: predictions 0, 1, 1, 2, 0 against targets 0, 1, 2, 2 and an ignored one.
    runner::TensorDict outputs = {
        {"logits", torch::tensor({{{9.f, 0.f, 0.f, 0.f, 9.f}, {0.f, 9.f, 9.f, 0.f, 0.f}, {0.f, 0.f, 0.f, 9.f, 0.f}}})}};
    runner::TensorDict batch = {{"target", torch::tensor({{0, 1, 2, 2, -100}}, torch::kInt64)}};
    runner::BatchOutput out{&outputs, &batch, 1, outputs.at("logits"), batch.at("target"), 0.5};
    runner::TopKAccuracy acc(1);
    acc.update(out);
    CHECK(acc.state() == std::vector<double>{3, 4});
    const auto& reg = test::builtin_registry();
    auto metric = [&](const std::string& name, int64_t classes) {
      return std::get<runner::MetricFactory>(reg.find(runner::Kind::Metric, name)->factory)(
          runner::Params(YAML::Node(YAML::NodeType::Map), "metrics"), runner::MetricContext{classes, {}});
    };
    auto iou = metric("mean_iou", 3);
    iou->update(out);
    // class 0: 1/1; class 1: 1 of {1, 2} -> 1/2; class 2: 1 of {2, 3} -> 1/2
    CHECK(iou->compute() == doctest::Approx(2.0 / 3.0));
    CHECK(iou->state() == std::vector<double>{1, 1, 1, 1, 2, 2});
    // Uniform logits over 4 tokens: 2 bits each; over 8: 3 bits; the ignored token counts for nothing.
    auto bpc = metric("bits_per_char", 4);
    runner::TensorDict u4 = {{"logits", torch::zeros({2, 4, 3})}}, u8 = {{"logits", torch::zeros({1, 8, 2})}};
    runner::TensorDict t4 = {{"target", torch::tensor({{0, 1, 2}, {3, -100, 0}}, torch::kInt64)}};
    runner::TensorDict t8 = {{"target", torch::tensor({{7, 6}}, torch::kInt64)}};
    bpc->update(runner::BatchOutput{&u4, &t4, 2, {}, {}, 0});
    CHECK(bpc->compute() == doctest::Approx(2.0));
    bpc->update(runner::BatchOutput{&u8, &t8, 1, {}, {}, 0});
    CHECK(bpc->compute() == doctest::Approx((5 * 2.0 + 2 * 3.0) / 7));
  }

  TEST_CASE("accuracy, top-k and average loss") {
    runner::BatchOutput out;
    out.logits = torch::tensor({{0.1, 0.9, 0.0}, {0.8, 0.1, 0.1}, {0.2, 0.3, 0.5}, {0.5, 0.4, 0.1}});
    out.targets = torch::tensor({1, 0, 0, 1}, torch::kInt64);
    out.loss = 2.0;
    out.samples = 4;
    runner::TopKAccuracy acc(1), top2(2);
    runner::AverageLoss loss;
    for (runner::Metric* m : std::vector<runner::Metric*>{&acc, &top2, &loss}) m->update(out);
    CHECK(acc.compute() == doctest::Approx(0.5));
    CHECK(top2.compute() == doctest::Approx(0.75));  // sample 3's target is third of three
    out.loss = 1.0;
    out.logits = out.logits.narrow(0, 0, 2);
    out.targets = out.targets.narrow(0, 0, 2);
    out.samples = 2;
    loss.update(out);
    CHECK(loss.compute() == doctest::Approx((2.0 * 4 + 1.0 * 2) / 6));
    CHECK(acc.name() == "accuracy");
    CHECK(top2.name() == "top2");
  }

}  // TEST_SUITE
