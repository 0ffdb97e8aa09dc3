// ResNet-8 for small images: conv3x3(in->16)+BN+ReLU, three stages of one BasicBlock
// (16, 32, 64 channels; strides 1, 2, 2), global average pool, linear. A block is
// conv3x3-BN-ReLU-conv3x3-BN plus shortcut (1x1 conv + BN where the shape changes,
// else identity), ReLU after the add. LibTorch default initialisation.
// 77,754 parameters for 1x28x28 input and 10 classes. BatchNorm is the SDK's
// runner::nn::BatchNorm2d, so dist.sync_batchnorm works.
#include "common.hpp"

namespace {

namespace nn = torch::nn;
using namespace runner::plugins::models;

class ResNet8 final : public runner::Model {
 public:
  ResNet8(int64_t in_channels, int64_t classes, int64_t width)
      : conv1_(register_module("conv1", conv(in_channels, width, 3, 1, 1))),
        bn1_(register_module("bn1", BN(width))),
        layer1_(register_module("layer1", std::make_shared<BasicBlock>(width, width, 1))),
        layer2_(register_module("layer2", std::make_shared<BasicBlock>(width, 2 * width, 2))),
        layer3_(register_module("layer3", std::make_shared<BasicBlock>(2 * width, 4 * width, 2))),
        fc_(register_module("fc", nn::Linear(4 * width, classes))) {}

  torch::Tensor forward(torch::Tensor x) override {
    x = trace("conv1", conv1_(x));
    x = trace("bn1", bn1_->forward_relu(x));
    x = trace("layer1", layer1_->forward(x));
    x = trace("layer2", layer2_->forward(x));
    x = trace("layer3", layer3_->forward(x));
    x = trace("avgpool", torch::adaptive_avg_pool2d(x, {1, 1}).flatten(1));
    return trace("fc", fc_(x));
  }

 private:
  nn::Conv2d conv1_;
  BN bn1_;
  std::shared_ptr<BasicBlock> layer1_, layer2_, layer3_;
  nn::Linear fc_;
};

runner::Schema schema() {
  runner::Schema s;
  add_num_classes(s);
  s.add("width", runner::ParamType::Int, "channels of the first stage (doubled at each later stage)").def(16).min(1);
  return s;
}

std::shared_ptr<runner::Model> make(const runner::Params& p, const runner::ModelContext& ctx) {
  require_image_input(ctx, "resnet8");
  return std::make_shared<ResNet8>(ctx.input_shape[0], output_classes(p, ctx), p.get<int64_t>("width"));
}

}  // namespace

RUNNER_REGISTER_MODEL("resnet8", "ResNet-8 for small images (16-32-64 channels, one BasicBlock per stage)", schema,
                      make)
