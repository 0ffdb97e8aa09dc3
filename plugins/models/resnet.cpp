// ResNet-18/34/50/101 exactly as torchvision.models.resnet builds them (the "v1.5"
// variant: in a Bottleneck the stride sits on the 3x3 conv), with torchvision's module
// and parameter names (conv1, bn1, layer1.0.conv1, layer2.0.downsample.0, fc, ...), so
// a state dict maps one to one in both directions. Initialisation as torchvision:
// convs kaiming_normal_(fan_out, relu), BatchNorm weight 1 / bias 0, Linear LibTorch's
// default; `zero_init_residual` zeroes the last BatchNorm weight of each block.
// Parameter counts for 1000 classes (torchvision's published numbers):
// resnet18 11,689,512; resnet34 21,797,672; resnet50 25,557,032; resnet101 44,549,160.
// `stem: cifar` replaces the 7x7/2 conv + max-pool by a 3x3/1 conv (for 32x32 images);
// the default `imagenet` is torchvision's stem. BatchNorm is the SDK's
// runner::nn::BatchNorm2d (same names; dist.sync_batchnorm works).
#include "common.hpp"

namespace {

namespace nn = torch::nn;
using namespace runner::plugins::models;

// conv1x1-BN-ReLU-conv3x3(stride)-BN-ReLU-conv1x1(x4)-BN plus the projection shortcut
// where the shape changes (torchvision's Bottleneck, v1.5).
class Bottleneck final : public ResidualBlock {
 public:
  static constexpr int64_t kExpansion = 4;
  Bottleneck(int64_t in, int64_t planes, int64_t stride)
      : conv1_(register_module("conv1", conv(in, planes, 1, 1, 0))),
        bn1_(register_module("bn1", BN(planes))),
        conv2_(register_module("conv2", conv(planes, planes, 3, stride, 1))),
        bn2_(register_module("bn2", BN(planes))),
        conv3_(register_module("conv3", conv(planes, planes * kExpansion, 1, 1, 0))),
        bn3_(register_module("bn3", BN(planes * kExpansion))) {
    if (stride != 1 || in != planes * kExpansion)
      downsample_ = register_module(
          "downsample", nn::Sequential(conv(in, planes * kExpansion, 1, stride, 0), BN(planes * kExpansion)));
  }
  torch::Tensor forward(const torch::Tensor& x) override {
    // BatchNorm (+ shortcut) + ReLU as one step where it can (see common.hpp)
    torch::Tensor y = bn1_->forward_relu(conv1_(x));
    y = bn2_->forward_relu(conv2_(y));
    return bn3_->forward_relu(conv3_(y), downsample_ ? downsample_->forward(x) : x);
  }
  BN last_bn() override { return bn3_; }

 private:
  nn::Conv2d conv1_;
  BN bn1_;
  nn::Conv2d conv2_;
  BN bn2_;
  nn::Conv2d conv3_;
  BN bn3_;
  nn::Sequential downsample_{nullptr};
};

// A torchvision layer: a ModuleList named "0", "1", ... of blocks.
class Layer final : public nn::Module {
 public:
  void add(std::shared_ptr<ResidualBlock> block) {
    register_module(std::to_string(blocks_.size()), block);
    blocks_.push_back(std::move(block));
  }
  torch::Tensor forward(torch::Tensor x) {
    for (auto& b : blocks_) x = b->forward(x);
    return x;
  }
  const std::vector<std::shared_ptr<ResidualBlock>>& blocks() const { return blocks_; }

 private:
  std::vector<std::shared_ptr<ResidualBlock>> blocks_;
};

class ResNet final : public runner::Model {
 public:
  ResNet(bool bottleneck, std::array<int64_t, 4> depths, int64_t in_channels, int64_t classes, bool cifar_stem,
         bool zero_init_residual)
      : cifar_stem_(cifar_stem) {
    const int64_t expansion = bottleneck ? Bottleneck::kExpansion : 1;
    conv1_ = register_module("conv1", cifar_stem ? conv(in_channels, 64, 3, 1, 1) : conv(in_channels, 64, 7, 2, 3));
    bn1_ = register_module("bn1", BN(64));
    int64_t in = 64;
    for (int l = 0; l < 4; ++l) {
      const int64_t planes = 64 << l, stride = l == 0 ? 1 : 2;
      auto layer = std::make_shared<Layer>();
      for (int64_t b = 0; b < depths[l]; ++b) {
        const int64_t s = b == 0 ? stride : 1;
        if (bottleneck)
          layer->add(std::make_shared<Bottleneck>(in, planes, s));
        else
          layer->add(std::make_shared<BasicBlock>(in, planes, s));
        in = planes * expansion;
      }
      layers_[l] = register_module("layer" + std::to_string(l + 1), layer);
    }
    fc_ = register_module("fc", nn::Linear(512 * expansion, classes));

    for (auto& m : modules(/*include_self=*/false)) {
      if (auto* c = m->as<nn::Conv2d>()) {
        torch::nn::init::kaiming_normal_(c->weight, 0, torch::kFanOut, torch::kReLU);
      } else if (auto* bn = m->as<runner::nn::BatchNorm2dImpl>()) {
        torch::nn::init::ones_(bn->weight);
        torch::nn::init::zeros_(bn->bias);
      }
    }
    if (zero_init_residual) {
      torch::NoGradGuard no_grad;
      for (auto& layer : layers_)
        for (auto& block : layer->blocks()) block->last_bn()->weight.zero_();
    }
  }

  torch::Tensor forward(torch::Tensor x) override {
    x = trace("conv1", conv1_(x));
    x = trace("bn1+relu", bn1_->forward_relu(x));
    if (!cifar_stem_) x = trace("maxpool", torch::max_pool2d(x, 3, 2, 1));
    for (int l = 0; l < 4; ++l) x = trace("layer" + std::to_string(l + 1), layers_[l]->forward(x));
    x = trace("avgpool", torch::adaptive_avg_pool2d(x, {1, 1}).flatten(1));
    return trace("fc", fc_(x));
  }

 private:
  bool cifar_stem_;
  nn::Conv2d conv1_{nullptr};
  BN bn1_{nullptr};
  std::array<std::shared_ptr<Layer>, 4> layers_;
  nn::Linear fc_{nullptr};
};

runner::Schema schema() {
  runner::Schema s;
  add_num_classes(s);
  s.add("zero_init_residual", runner::ParamType::Bool,
        "start each residual branch at zero (last BatchNorm weight of every block = 0)")
      .def(false);
  s.add("stem", runner::ParamType::String,
        "imagenet: torchvision's 7x7/2 conv + 3x3/2 max-pool; cifar: one 3x3/1 conv, no pool (32x32 images)")
      .def("imagenet")
      .one_of({"imagenet", "cifar"});
  return s;
}

runner::ModelFactory factory(bool bottleneck, std::array<int64_t, 4> depths, std::string name) {
  return [=](const runner::Params& p, const runner::ModelContext& ctx) -> std::shared_ptr<runner::Model> {
    require_image_input(ctx, name);
    return std::make_shared<ResNet>(bottleneck, depths, ctx.input_shape[0], output_classes(p, ctx),
                                    p.get<std::string>("stem") == "cifar", p.get<bool>("zero_init_residual"));
  };
}

}  // namespace

RUNNER_REGISTER_MODEL("resnet18", "torchvision ResNet-18 (same parameter names; 11,689,512 parameters at 1000 classes)",
                      schema, factory(false, {2, 2, 2, 2}, "resnet18"))
RUNNER_REGISTER_MODEL("resnet34", "torchvision ResNet-34 (same parameter names; 21,797,672 parameters at 1000 classes)",
                      schema, factory(false, {3, 4, 6, 3}, "resnet34"))
RUNNER_REGISTER_MODEL("resnet50", "torchvision ResNet-50 (same parameter names; 25,557,032 parameters at 1000 classes)",
                      schema, factory(true, {3, 4, 6, 3}, "resnet50"))
RUNNER_REGISTER_MODEL("resnet101",
                      "torchvision ResNet-101 (same parameter names; 44,549,160 parameters at 1000 classes)", schema,
                      factory(true, {3, 4, 23, 3}, "resnet101"))
