// "ResNet-9" of David Page's cifar10-fast (Myrtle.ai, "How to train your ResNet"), the
// network behind the fast CIFAR-10 training records:
//   prep:   conv3x3(C->64)  BN ReLU
//   layer1: conv3x3(64->128) BN ReLU maxpool2, + residual (conv BN ReLU) x2 at 128
//   layer2: conv3x3(128->256) BN ReLU maxpool2
//   layer3: conv3x3(256->512) BN ReLU maxpool2, + residual (conv BN ReLU) x2 at 512
//   global max-pool, linear 512->classes without bias, output scaled by 0.125.
// 6,573,120 parameters at 3 input channels and 10 classes. Widths scale with `width`
// (64 = the original).
#include "common.hpp"

namespace {

namespace nn = torch::nn;
using namespace runner::plugins::models;

// conv3x3 (no bias) + BatchNorm + ReLU, named conv / bn like the original's conv_bn.
class ConvBN final : public nn::Module {
 public:
  ConvBN(int64_t in, int64_t out)
      : conv_(register_module("conv", conv(in, out, 3, 1, 1))), bn_(register_module("bn", BN(out))) {}
  torch::Tensor forward(const torch::Tensor& x) { return bn_->forward_relu(conv_(x)); }

 private:
  nn::Conv2d conv_;
  BN bn_;
};

class ResNet9 final : public runner::Model {
 public:
  ResNet9(int64_t in_channels, int64_t classes, int64_t w, double scale)
      : prep_(register_module("prep", std::make_shared<ConvBN>(in_channels, w))),
        layer1_(register_module("layer1", std::make_shared<ConvBN>(w, 2 * w))),
        res1a_(register_module("res1a", std::make_shared<ConvBN>(2 * w, 2 * w))),
        res1b_(register_module("res1b", std::make_shared<ConvBN>(2 * w, 2 * w))),
        layer2_(register_module("layer2", std::make_shared<ConvBN>(2 * w, 4 * w))),
        layer3_(register_module("layer3", std::make_shared<ConvBN>(4 * w, 8 * w))),
        res3a_(register_module("res3a", std::make_shared<ConvBN>(8 * w, 8 * w))),
        res3b_(register_module("res3b", std::make_shared<ConvBN>(8 * w, 8 * w))),
        fc_(register_module("fc", nn::Linear(nn::LinearOptions(8 * w, classes).bias(false)))),
        scale_(scale) {}

  torch::Tensor forward(torch::Tensor x) override {
    x = trace("prep", prep_->forward(x));
    x = trace("layer1", torch::max_pool2d(layer1_->forward(x), 2));
    x = trace("res1", x + res1b_->forward(res1a_->forward(x)));
    x = trace("layer2", torch::max_pool2d(layer2_->forward(x), 2));
    x = trace("layer3", torch::max_pool2d(layer3_->forward(x), 2));
    x = trace("res3", x + res3b_->forward(res3a_->forward(x)));
    x = trace("maxpool", std::get<0>(torch::adaptive_max_pool2d(x, {1, 1})).flatten(1));
    return trace("fc", fc_(x) * scale_);
  }

 private:
  std::shared_ptr<ConvBN> prep_, layer1_, res1a_, res1b_, layer2_, layer3_, res3a_, res3b_;
  nn::Linear fc_;
  double scale_;
};

runner::Schema schema() {
  runner::Schema s;
  add_num_classes(s);
  s.add("width", runner::ParamType::Int, "channels of the prep layer (doubled per stage; 64 = the original)")
      .def(64)
      .min(1);
  s.add("output_scale", runner::ParamType::Float, "multiplier of the logits (the original's 0.125)").def(0.125);
  return s;
}

std::shared_ptr<runner::Model> make(const runner::Params& p, const runner::ModelContext& ctx) {
  require_image_input(ctx, "resnet9");
  if (ctx.input_shape[1] < 8 || ctx.input_shape[2] < 8)
    throw runner::Error("resnet9 halves the image three times: it needs at least 8x8 input, the dataflow gives " +
                        std::to_string(ctx.input_shape[1]) + "x" + std::to_string(ctx.input_shape[2]));
  return std::make_shared<ResNet9>(ctx.input_shape[0], output_classes(p, ctx), p.get<int64_t>("width"),
                                   p.get<double>("output_scale"));
}

}  // namespace

RUNNER_REGISTER_MODEL("resnet9", "ResNet-9 of cifar10-fast (Page 2018; 6,573,120 parameters at 10 classes)", schema,
                      make)
