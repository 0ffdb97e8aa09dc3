#pragma once
// Grayscale image classification sets stored as IDX files (MNIST, Fashion-MNIST):
// uint8 images kept in memory, augmented per sample into normalised float32.
#include <runner/components.hpp>
#include <runner/idx.hpp>

#include <string>

#include "planar_augment.hpp"

namespace runner::plugins {

class IdxImageDataset final : public Dataset {
 public:
  IdxImageDataset(const std::string& images_path, const std::string& labels_path, int64_t num_classes,
                  PlanarAugment augment, int64_t max_samples);
  int64_t size() const override { return n_; }
  std::vector<int64_t> sample_shape() const override { return {1, h_, w_}; }
  void get(int64_t index, float* out, int64_t* target, Rng& rng) const override;

 private:
  IdxArray images_, labels_;
  int64_t n_ = 0, h_ = 0, w_ = 0;
  PlanarAugment aug_;
};

/// Declares the parameters of an IDX dataflow (root, augmentation, normalisation, loader).
Schema idx_dataflow_schema(const std::string& default_root, double mean, double std, bool default_hflip);
/// Builds the dataflow for `root/{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]`.
Dataflow make_idx_dataflow(const Params& p, const std::string& title);

}  // namespace runner::plugins
