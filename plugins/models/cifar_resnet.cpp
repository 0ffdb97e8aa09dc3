// The CIFAR ResNets of He et al. 2016 (section 4.2): a 3x3 conv to 16 channels, three
// stages of n BasicBlocks at 16, 32 and 64 channels (strides 1, 2, 2), global average
// pool, linear; depth 6n+2 (resnet20: n=3, resnet56: n=9).
// Shortcuts where the shape changes: option A by default, as in the paper's CIFAR
// experiments (subsample by 2 and zero-pad the new channels: no parameters), or
// option B (1x1 conv + BatchNorm). Init: kaiming_normal_ (fan_in) on convs and the
// linear layer, as the widely used reference implementation (akamaster/pytorch_resnet_cifar10).
// Parameters at 10 classes, option A: resnet20 269,722 and resnet56 853,018 (the paper's
// "0.27M" and "0.85M").
#include "common.hpp"

namespace {

namespace nn = torch::nn;
using namespace runner::plugins::models;

class CifarResNet final : public runner::Model {
 public:
  CifarResNet(int64_t n, int64_t in_channels, int64_t classes, bool option_b)
      : conv1_(register_module("conv1", conv(in_channels, 16, 3, 1, 1))), bn1_(register_module("bn1", BN(16))) {
    int64_t in = 16;
    for (int l = 0; l < 3; ++l) {
      const int64_t out = 16 << l;
      auto layer = nn::Sequential();
      for (int64_t b = 0; b < n; ++b) {
        layer->push_back(std::make_shared<BasicBlock>(in, out, b == 0 && l > 0 ? 2 : 1,
                                                      option_b ? Shortcut::Projection : Shortcut::ZeroPad));
        in = out;
      }
      layers_.push_back(register_module("layer" + std::to_string(l + 1), layer));
    }
    fc_ = register_module("fc", nn::Linear(64, classes));
    for (auto& m : modules(false)) {
      if (auto* c = m->as<nn::Conv2d>()) torch::nn::init::kaiming_normal_(c->weight);
      if (auto* lin = m->as<nn::Linear>()) torch::nn::init::kaiming_normal_(lin->weight);
    }
  }
  torch::Tensor forward(torch::Tensor x) override {
    x = trace("conv1+bn1+relu", bn1_->forward_relu(conv1_(x)));
    for (size_t l = 0; l < layers_.size(); ++l) x = trace("layer" + std::to_string(l + 1), layers_[l]->forward(x));
    x = trace("avgpool", torch::adaptive_avg_pool2d(x, {1, 1}).flatten(1));
    return trace("fc", fc_(x));
  }

 private:
  nn::Conv2d conv1_;
  BN bn1_;
  std::vector<nn::Sequential> layers_;
  nn::Linear fc_{nullptr};
};

runner::Schema schema() {
  runner::Schema s;
  add_num_classes(s);
  s.add("shortcut", runner::ParamType::String,
        "where the shape changes: A = subsample + zero-pad channels (paper, no parameters), B = 1x1 conv + BN")
      .def("A")
      .one_of({"A", "B"});
  return s;
}

runner::ModelFactory factory(int64_t n, std::string name) {
  return [=](const runner::Params& p, const runner::ModelContext& ctx) -> std::shared_ptr<runner::Model> {
    require_image_input(ctx, name);
    return std::make_shared<CifarResNet>(n, ctx.input_shape[0], output_classes(p, ctx),
                                         p.get<std::string>("shortcut") == "B");
  };
}

}  // namespace

RUNNER_REGISTER_MODEL("resnet20", "CIFAR ResNet-20 of He et al. 2016 (3 stages x 3 blocks; 269,722 parameters)", schema,
                      factory(3, "resnet20"))
RUNNER_REGISTER_MODEL("resnet56", "CIFAR ResNet-56 of He et al. 2016 (3 stages x 9 blocks; 853,018 parameters)", schema,
                      factory(9, "resnet56"))
