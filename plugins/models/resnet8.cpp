// ResNet-8 for small images: conv3x3(in->16)+BN+ReLU, three stages of one BasicBlock
// (16, 32, 64 channels; strides 1, 2, 2), global average pool, linear. A block is
// conv3x3-BN-ReLU-conv3x3-BN plus shortcut (1x1 conv + BN where the shape changes,
// else identity), ReLU after the add. LibTorch default initialisation.
// 77,754 parameters for 1x28x28 input and 10 classes. BatchNorm is the SDK's
// runner::nn::BatchNorm2d, so dist.sync_batchnorm works.
#include <runner/nn.hpp>
#include <runner/plugin.hpp>

namespace {

namespace nn = torch::nn;

nn::Conv2d conv(int64_t in, int64_t out, int64_t k, int64_t stride) {
  return nn::Conv2d(nn::Conv2dOptions(in, out, k).stride(stride).padding(k / 2).bias(false));
}

class BasicBlock final : public nn::Module {
 public:
  BasicBlock(int64_t in, int64_t out, int64_t stride)
      : conv1_(register_module("conv1", conv(in, out, 3, stride))),
        bn1_(register_module("bn1", runner::nn::BatchNorm2d(out))),
        conv2_(register_module("conv2", conv(out, out, 3, 1))),
        bn2_(register_module("bn2", runner::nn::BatchNorm2d(out))) {
    if (stride != 1 || in != out)
      downsample_ = register_module("downsample", nn::Sequential(conv(in, out, 1, stride), runner::nn::BatchNorm2d(out)));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    torch::Tensor y = torch::relu(bn1_(conv1_(x)));
    y = bn2_(conv2_(y));
    return torch::relu(y + (downsample_ ? downsample_->forward(x) : x));
  }

 private:
  nn::Conv2d conv1_;
  runner::nn::BatchNorm2d bn1_;
  nn::Conv2d conv2_;
  runner::nn::BatchNorm2d bn2_;
  nn::Sequential downsample_{nullptr};
};

class ResNet8 final : public runner::Model {
 public:
  ResNet8(int64_t in_channels, int64_t classes, int64_t width)
      : conv1_(register_module("conv1", conv(in_channels, width, 3, 1))),
        bn1_(register_module("bn1", runner::nn::BatchNorm2d(width))),
        layer1_(register_module("layer1", std::make_shared<BasicBlock>(width, width, 1))),
        layer2_(register_module("layer2", std::make_shared<BasicBlock>(width, 2 * width, 2))),
        layer3_(register_module("layer3", std::make_shared<BasicBlock>(2 * width, 4 * width, 2))),
        fc_(register_module("fc", nn::Linear(4 * width, classes))) {}

  torch::Tensor forward(torch::Tensor x) override {
    x = trace("conv1", conv1_(x));
    x = trace("bn1", torch::relu(bn1_(x)));
    x = trace("layer1", layer1_->forward(x));
    x = trace("layer2", layer2_->forward(x));
    x = trace("layer3", layer3_->forward(x));
    x = trace("avgpool", torch::adaptive_avg_pool2d(x, {1, 1}).flatten(1));
    return trace("fc", fc_(x));
  }

 private:
  nn::Conv2d conv1_;
  runner::nn::BatchNorm2d bn1_;
  std::shared_ptr<BasicBlock> layer1_, layer2_, layer3_;
  nn::Linear fc_;
};

runner::Schema schema() {
  runner::Schema s;
  s.add("num_classes", runner::ParamType::Int, "output classes (0: from the dataflow)").def(0).min(0);
  s.add("width", runner::ParamType::Int, "channels of the first stage (doubled at each later stage)").def(16).min(1);
  return s;
}

std::shared_ptr<runner::Model> make(const runner::Params& p, const runner::ModelContext& ctx) {
  if (ctx.input_shape.size() != 3)
    throw runner::Error("resnet8 needs image input [C, H, W], the dataflow gives " +
                        std::to_string(ctx.input_shape.size()) + " dimensions");
  const int64_t classes = p.get<int64_t>("num_classes") > 0 ? p.get<int64_t>("num_classes") : ctx.num_classes;
  return std::make_shared<ResNet8>(ctx.input_shape[0], classes, p.get<int64_t>("width"));
}

}  // namespace

RUNNER_REGISTER_MODEL("resnet8", "ResNet-8 for small images (16-32-64 channels, one BasicBlock per stage)", schema,
                      make)
