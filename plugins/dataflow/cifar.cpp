// CIFAR-10 and CIFAR-100 from the official binary versions
// (https://www.cs.toronto.edu/~kriz/cifar.html), read whole into memory:
//   cifar-10-batches-bin/data_batch_{1..5}.bin, test_batch.bin: records of
//     <1 byte label 0..9><3072 bytes: 1024 red, 1024 green, 1024 blue, row-major 32x32>
//   cifar-100-binary/train.bin, test.bin: records of
//     <1 byte coarse label 0..19><1 byte fine label 0..99><3072 bytes>
// `root` may be the folder holding cifar-10-batches-bin/ (cifar-100-binary/) or that
// folder itself. Train augmentation as the seeds': pad 4 + random crop 32 + horizontal
// flip + per-channel normalisation.
#include <filesystem>
#include <fstream>

#include <runner/plugin.hpp>

#include "params_util.hpp"
#include "planar_augment.hpp"

namespace fs = std::filesystem;

namespace {

using runner::plugins::PlanarAugment;
constexpr int64_t kPixels = 3 * 32 * 32;

struct Records {
  std::vector<uint8_t> images;  ///< n x 3072
  std::vector<uint8_t> labels;  ///< n
  int64_t n = 0;
};

// Appends the records of one binary file. `label_bytes` is 1 (CIFAR-10) or 2
// (CIFAR-100: coarse, fine); `label_index` picks which one is the target.
void read_records(const std::string& path, int label_bytes, int label_index, int64_t num_classes, Records& r) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) throw runner::Error(path + ": cannot open (expected a CIFAR binary file)");
  const int64_t size = static_cast<int64_t>(in.tellg());
  const int64_t record = label_bytes + kPixels;
  if (size == 0 || size % record != 0)
    throw runner::Error(path + ": " + std::to_string(size) + " bytes is not a whole number of " +
                        std::to_string(record) + "-byte records (" +
                        (label_bytes == 1 ? "CIFAR-10: 1 label byte + 3072 pixels"
                                          : "CIFAR-100: coarse and fine label bytes + 3072 pixels") +
                        "); is this the binary version of the data set?");
  std::vector<uint8_t> bytes(static_cast<size_t>(size));
  in.seekg(0);
  if (!in.read(reinterpret_cast<char*>(bytes.data()), size)) throw runner::Error(path + ": read error");
  const int64_t n = size / record;
  r.images.reserve(r.images.size() + n * kPixels);
  for (int64_t i = 0; i < n; ++i) {
    const uint8_t* rec = bytes.data() + i * record;
    const int label = rec[label_index];
    if (label >= num_classes)
      throw runner::Error(path + ": record " + std::to_string(i) + " has label " + std::to_string(label) +
                          ", outside [0, " + std::to_string(num_classes) + ")" +
                          (label_bytes == 2 ? " (label_mode " + std::string(label_index == 0 ? "coarse" : "fine") + ")"
                                            : std::string()));
    r.labels.push_back(static_cast<uint8_t>(label));
    r.images.insert(r.images.end(), rec + label_bytes, rec + record);
  }
  r.n += n;
}

class CifarDataset final : public runner::Dataset {
 public:
  CifarDataset(std::shared_ptr<const Records> records, PlanarAugment augment, int64_t max_samples)
      : records_(std::move(records)), aug_(augment) {
    n_ = records_->n;
    if (max_samples > 0) n_ = std::min(n_, max_samples);
  }
  int64_t size() const override { return n_; }
  std::vector<int64_t> sample_shape() const override { return {3, 32, 32}; }
  void get(int64_t index, float* out, int64_t* target, runner::Rng& rng) const override {
    *target = records_->labels[index];
    aug_.apply(records_->images.data() + index * kPixels, 3, 32, 32, rng, out);
  }

 private:
  std::shared_ptr<const Records> records_;
  PlanarAugment aug_;
  int64_t n_ = 0;
};

struct Variant {
  const char* name;
  const char* folder;
  std::vector<std::string> train_files, test_files;
  int label_bytes;
  std::vector<double> mean, std;
};

const Variant& variant(bool hundred) {
  static const Variant ten{
      "cifar10",
      "cifar-10-batches-bin",
      {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin"},
      {"test_batch.bin"},
      1,
      {0.4914, 0.4822, 0.4465},
      {0.2023, 0.1994, 0.2010}};
  static const Variant hundred_{"cifar100", "cifar-100-binary",       {"train.bin"},           {"test.bin"},
                                2,          {0.5071, 0.4865, 0.4409}, {0.2673, 0.2564, 0.2762}};
  return hundred ? hundred_ : ten;
}

runner::Schema schema(bool hundred) {
  const Variant& v = variant(hundred);
  runner::Schema s;
  s.add("root", runner::ParamType::String,
        std::string("folder holding ") + v.folder + "/ (the binary version), or that folder itself")
      .required();
  runner::add_loader_params(s, 128);
  if (hundred)
    s.add("label_mode", runner::ParamType::String, "fine: 100 classes; coarse: 20 superclasses")
        .def("fine")
        .one_of({"fine", "coarse"});
  s.add("augment", runner::ParamType::Bool, "train augmentation: padded random crop + horizontal flip").def(true);
  s.add("pad", runner::ParamType::Int, "padding of the random 32x32 crop (pixels; 0: no crop)").def(4).min(0).max(16);
  s.add("padding_mode", runner::ParamType::String, "constant (the `fill` value) or reflect")
      .def("constant")
      .one_of({"constant", "reflect"});
  s.add("fill", runner::ParamType::Int, "pixel value (0..255) of constant padding").def(0).min(0).max(255);
  s.add("hflip", runner::ParamType::Bool, "random horizontal flip when augmenting").def(true);
  s.add("mean", runner::ParamType::List, "per-channel normalisation mean (pixel scale 0..1)").def(v.mean);
  s.add("std", runner::ParamType::List, "per-channel normalisation std (pixel scale 0..1)").def(v.std);
  s.add("train_eval_size", runner::ParamType::Int,
        "also evaluate on this many training samples (fixed random subset, no augmentation; 0: off)")
      .def(0)
      .min(0);
  s.add("max_train_samples", runner::ParamType::Int, "use only the first N training samples (0: all)").def(0).min(0);
  s.add("max_val_samples", runner::ParamType::Int, "use only the first N test samples (0: all)").def(0).min(0);
  return s;
}

runner::DataflowFactory make(bool hundred) {
  return [hundred](const runner::Params& p, const runner::DataflowContext& ctx) {
    const Variant& v = variant(hundred);
    const std::string root = p.get<std::string>("root");
    std::error_code ec;
    if (!fs::is_directory(root, ec)) throw runner::ParamError("root", "folder '" + root + "' does not exist");
    const std::string dir =
        fs::is_directory(fs::path(root) / v.folder, ec) ? (fs::path(root) / v.folder).string() : root;
    for (const auto* files : {&v.train_files, &v.test_files})
      for (const std::string& f : *files)
        if (!fs::exists(fs::path(dir) / f, ec))
          throw runner::ParamError(
              "root", "no " + f + " in '" + dir + "' (expected the binary version: " + v.folder + "/" + f + ")");
    const int label_index = hundred && p.get<std::string>("label_mode") == "fine" ? 1 : 0;
    const int64_t classes = hundred ? (label_index == 1 ? 100 : 20) : 10;
    auto train = std::make_shared<Records>(), test = std::make_shared<Records>();
    for (const std::string& f : v.train_files)
      read_records((fs::path(dir) / f).string(), v.label_bytes, label_index, classes, *train);
    for (const std::string& f : v.test_files)
      read_records((fs::path(dir) / f).string(), v.label_bytes, label_index, classes, *test);

    const runner::plugins::Normalisation norm = runner::plugins::read_normalisation(p);
    PlanarAugment eval_aug;
    eval_aug.set_normalisation(3, norm.mean.data(), norm.std.data());
    PlanarAugment train_aug = eval_aug;
    const bool augment = p.get<bool>("augment");
    if (augment) {
      train_aug.pad = p.get<int>("pad");
      train_aug.reflect = p.get<std::string>("padding_mode") == "reflect";
      train_aug.fill = static_cast<uint8_t>(p.get<int>("fill"));
      train_aug.hflip = p.get<bool>("hflip");
    }
    runner::Dataflow df;
    runner::read_loader_params(p, df);
    df.num_classes = classes;
    const int64_t max_train = p.get<int64_t>("max_train_samples");
    df.train = std::make_shared<CifarDataset>(train, train_aug, max_train);
    df.val = std::make_shared<CifarDataset>(test, eval_aug, p.get<int64_t>("max_val_samples"));
    if (const int64_t n = p.get<int64_t>("train_eval_size"); n > 0)
      df.train_eval = runner::random_subset(std::make_shared<CifarDataset>(train, eval_aug, max_train), n, ctx.seed);
    df.description =
        std::string(v.name) + " from " + dir +
        (augment ? " (train: pad " + std::to_string(train_aug.pad) + " " + p.get<std::string>("padding_mode") +
                       " + crop 32" + (train_aug.hflip ? " + flip)" : ")")
                 : " (no augmentation)");
    return df;
  };
}

runner::Schema schema10() { return schema(false); }
runner::Schema schema100() { return schema(true); }

}  // namespace

RUNNER_REGISTER_DATAFLOW("cifar10", "CIFAR-10, official binary version (cifar-10-batches-bin)", schema10, make(false))
RUNNER_REGISTER_DATAFLOW("cifar100", "CIFAR-100, official binary version (cifar-100-binary); fine or coarse labels",
                         schema100, make(true))
