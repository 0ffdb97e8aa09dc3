#pragma once
// Grayscale image classification sets stored as IDX files (MNIST, Fashion-MNIST):
// uint8 images kept in memory, augmented per sample into normalised float32.
#include <runner/components.hpp>
#include <runner/idx.hpp>

#include <string>

namespace runner::plugins {

struct Augment {
  int pad = 0;       ///< random crop of the original size after zero-padding by `pad`
  bool hflip = false;
  float mean = 0, std = 1;
};

class IdxImageDataset final : public Dataset {
 public:
  IdxImageDataset(const std::string& images_path, const std::string& labels_path, int64_t num_classes,
                  Augment augment, int64_t max_samples);
  int64_t size() const override { return n_; }
  std::vector<int64_t> sample_shape() const override { return {1, h_, w_}; }
  void get(int64_t index, float* out, int64_t* target, Rng& rng) const override;

 private:
  IdxArray images_, labels_;
  int64_t n_ = 0, h_ = 0, w_ = 0;
  Augment aug_;
  float lut_[256];
};

/// Declares the parameters of an IDX dataflow (root, augmentation, normalisation, loader).
Schema idx_dataflow_schema(const std::string& default_root, double mean, double std, bool default_hflip);
/// Builds the dataflow for `root/{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]`.
Dataflow make_idx_dataflow(const Params& p, const std::string& title);

}  // namespace runner::plugins
