#include "idx_images.hpp"

#include <filesystem>

#include <runner/error.hpp>

namespace fs = std::filesystem;

namespace runner::plugins {

IdxImageDataset::IdxImageDataset(const std::string& images_path, const std::string& labels_path, int64_t num_classes,
                                 PlanarAugment augment, int64_t max_samples)
    : images_(read_idx(images_path)), labels_(read_idx(labels_path)), aug_(augment) {
  if (images_.dims.size() != 3)
    throw Error(images_path + ": expected an IDX image file with 3 dimensions (count, height, width), found " +
                std::to_string(images_.dims.size()));
  if (labels_.dims.size() != 1)
    throw Error(labels_path + ": expected an IDX label file with 1 dimension, found " +
                std::to_string(labels_.dims.size()));
  if (images_.dims[0] != labels_.dims[0])
    throw Error(images_path + " has " + std::to_string(images_.dims[0]) + " images but " + labels_path + " has " +
                std::to_string(labels_.dims[0]) + " labels");
  for (size_t i = 0; i < labels_.data.size(); ++i)
    if (labels_.data[i] >= num_classes)
      throw Error(labels_path + ": label " + std::to_string(labels_.data[i]) + " at index " + std::to_string(i) +
                  " is outside [0, " + std::to_string(num_classes) + ")");
  n_ = images_.dims[0];
  if (max_samples > 0) n_ = std::min(n_, max_samples);
  h_ = images_.dims[1];
  w_ = images_.dims[2];
}

void IdxImageDataset::get(int64_t index, float* out, int64_t* target, Rng& rng) const {
  *target = labels_.data[index];
  aug_.apply(images_.data.data() + index * h_ * w_, 1, h_, w_, rng, out);
}

Schema idx_dataflow_schema(const std::string& default_root, double mean, double std, bool default_hflip) {
  Schema s;
  auto& root = s.add("root", ParamType::String, "folder with {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]");
  if (default_root.empty())
    root.required();
  else
    root.def(default_root);
  add_loader_params(s, 128);
  s.add("augment", ParamType::Bool, "train augmentation: random crop with padding + horizontal flip").def(true);
  s.add("pad", ParamType::Int, "padding of the random crop (pixels)").def(2).min(0).max(16);
  s.add("hflip", ParamType::Bool, "random horizontal flip when augmenting").def(default_hflip);
  s.add("mean", ParamType::Float, "normalisation mean (pixel scale 0..1)").def(mean);
  s.add("std", ParamType::Float, "normalisation std (pixel scale 0..1)").def(std).greater_than(0);
  s.add("max_train_samples", ParamType::Int, "use only the first N training samples (0: all)").def(0).min(0);
  s.add("max_val_samples", ParamType::Int, "use only the first N test samples (0: all)").def(0).min(0);
  return s;
}

namespace {
std::string find_file(const std::string& root, const std::string& stem) {
  for (const std::string& candidate : {root + "/" + stem + ".gz", root + "/" + stem}) {
    std::error_code ec;
    if (fs::exists(candidate, ec)) return candidate;
  }
  throw ParamError("root", "no " + stem + "[.gz] in '" + root + "'");
}
}  // namespace

Dataflow make_idx_dataflow(const Params& p, const std::string& title) {
  const std::string root = p.get<std::string>("root");
  std::error_code ec;
  if (!fs::is_directory(root, ec)) throw ParamError("root", "folder '" + root + "' does not exist");
  PlanarAugment test_aug;
  const float mean = static_cast<float>(p.get<double>("mean")), std = static_cast<float>(p.get<double>("std"));
  test_aug.set_normalisation(1, &mean, &std);
  PlanarAugment train_aug = test_aug;
  if (p.get<bool>("augment")) {
    train_aug.pad = p.get<int>("pad");
    train_aug.hflip = p.get<bool>("hflip");
  }
  Dataflow df;
  read_loader_params(p, df);
  df.num_classes = 10;
  df.train = std::make_shared<IdxImageDataset>(find_file(root, "train-images-idx3-ubyte"),
                                               find_file(root, "train-labels-idx1-ubyte"), df.num_classes, train_aug,
                                               p.get<int64_t>("max_train_samples"));
  df.val = std::make_shared<IdxImageDataset>(find_file(root, "t10k-images-idx3-ubyte"),
                                             find_file(root, "t10k-labels-idx1-ubyte"), df.num_classes, test_aug,
                                             p.get<int64_t>("max_val_samples"));
  df.description = title + " from " + root + (p.get<bool>("augment") ? " (train: crop+" : " (no augmentation") +
                   (p.get<bool>("augment") ? std::string(p.get<bool>("hflip") ? "flip)" : "no flip)") : ")");
  return df;
}

}  // namespace runner::plugins
