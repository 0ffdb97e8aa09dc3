// A small U-Net for semantic segmentation: `depth` encoder stages (two conv3x3-BN-ReLU,
// then 2x2 max-pooling), a bottleneck, and decoder stages that upsample (bilinear), join
// the encoder's features of the same size (concatenation) and convolve; a 1x1 convolution
// gives per-pixel logits. Input [N, C, H, W] with H and W divisible by 2^depth; output
// "logits" [N, num_classes, H, W].
#include <runner/plugin.hpp>

#include "common.hpp"

namespace {

using runner::plugins::models::BN;
using runner::plugins::models::conv;

// conv3x3-BN-ReLU twice. The children are named as the torch::nn::Sequential of conv, BN,
// ReLU, conv, BN, ReLU this once was ("0", "1", "3", "4"; ReLU has no state), so weights keep
// their names; BatchNorm and ReLU run as one step (runner::nn's fused CPU kernel).
class DoubleConv final : public torch::nn::Module {
 public:
  DoubleConv(int64_t in, int64_t out)
      : conv1_(register_module("0", conv(in, out, 3, 1, 1))),
        bn1_(register_module("1", BN(out))),
        conv2_(register_module("3", conv(out, out, 3, 1, 1))),
        bn2_(register_module("4", BN(out))) {}
  torch::Tensor forward(const torch::Tensor& x) { return bn2_->forward_relu(conv2_(bn1_->forward_relu(conv1_(x)))); }

 private:
  torch::nn::Conv2d conv1_;
  BN bn1_;
  torch::nn::Conv2d conv2_;
  BN bn2_;
};

class UNet final : public runner::Model {
 public:
  UNet(int64_t in_channels, int64_t classes, int64_t width, int64_t depth)
      : down_(register_module("down", torch::nn::ModuleList())), up_(register_module("up", torch::nn::ModuleList())) {
    for (int64_t i = 0; i < depth; ++i)
      down_->push_back(std::make_shared<DoubleConv>(i == 0 ? in_channels : width << (i - 1), width << i));
    bottom_ = register_module("bottom", std::make_shared<DoubleConv>(width << (depth - 1), width << depth));
    for (int64_t i = depth - 1; i >= 0; --i)  // the upsampled 2 * (width << i) channels + the skip's width << i
      up_->push_back(std::make_shared<DoubleConv>(3 * (width << i), width << i));
    head_ = register_module("head", torch::nn::Conv2d(torch::nn::Conv2dOptions(width, classes, 1)));
  }

  torch::Tensor forward(torch::Tensor x) override {
    std::vector<torch::Tensor> skips;
    for (size_t i = 0; i < down_->size(); ++i) {
      x = trace("down." + std::to_string(i), down_[i]->as<DoubleConv>()->forward(x));
      skips.push_back(x);
      x = torch::max_pool2d(x, 2);
    }
    x = trace("bottom", bottom_->forward(x));
    for (size_t i = 0; i < up_->size(); ++i) {
      const torch::Tensor& skip = skips[skips.size() - 1 - i];
      x = torch::upsample_bilinear2d(x, {skip.size(2), skip.size(3)}, /*align_corners=*/false);
      x = trace("up." + std::to_string(i), up_[i]->as<DoubleConv>()->forward(torch::cat({x, skip}, 1)));
    }
    return trace("head", head_->forward(x));
  }

 private:
  torch::nn::ModuleList down_, up_;
  std::shared_ptr<DoubleConv> bottom_;
  torch::nn::Conv2d head_{nullptr};
};

runner::Schema schema() {
  runner::Schema s;
  runner::plugins::models::add_num_classes(s);
  s.add("width", runner::ParamType::Int, "channels of the first stage (doubled at each stage down)").def(16).min(1);
  s.add("depth", runner::ParamType::Int, "encoder stages (each halves the resolution)").def(3).min(1).max(6);
  return s;
}

std::shared_ptr<runner::Model> make(const runner::Params& p, const runner::ModelContext& ctx) {
  runner::plugins::models::require_image_input(ctx, "unet");
  const int64_t depth = p.get<int64_t>("depth");
  for (int64_t d : {ctx.input_shape[1], ctx.input_shape[2]})
    if (d % (int64_t(1) << depth) != 0)
      throw runner::ParamError("depth", std::to_string(depth) + " stages need a height and width divisible by " +
                                            std::to_string(int64_t(1) << depth) + ", the input is " +
                                            std::to_string(ctx.input_shape[1]) + "x" +
                                            std::to_string(ctx.input_shape[2]));
  return std::make_shared<UNet>(ctx.input_shape[0], runner::plugins::models::output_classes(p, ctx),
                                p.get<int64_t>("width"), depth);
}

}  // namespace

RUNNER_REGISTER_MODEL("unet", "small U-Net: per-pixel logits [N, classes, H, W] (semantic segmentation)", schema, make)
