#pragma once
// What the built-in models share: the `num_classes` parameter, the image-input check,
// bias-free convolutions, and the residual BasicBlock used by resnet8, ResNet-18/34 and
// the CIFAR ResNets.
#include <runner/nn.hpp>
#include <runner/plugin.hpp>

#include <string>

namespace runner::plugins::models {

using BN = runner::nn::BatchNorm2d;

/// A convolution without bias (a BatchNorm follows it).
inline torch::nn::Conv2d conv(int64_t in, int64_t out, int64_t k, int64_t stride, int64_t padding) {
  return torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, k).stride(stride).padding(padding).bias(false));
}

/// Declares `num_classes` (0: the dataflow's); output_classes() reads it.
inline void add_num_classes(Schema& s) {
  s.add("num_classes", ParamType::Int, "output classes (0: from the dataflow)").def(0).min(0);
}
inline int64_t output_classes(const Params& p, const ModelContext& ctx) {
  const int64_t n = p.get<int64_t>("num_classes");
  return n > 0 ? n : ctx.num_classes;
}

/// Throws unless the dataflow gives images [C, H, W].
inline void require_image_input(const ModelContext& ctx, const std::string& model) {
  if (ctx.input_shape.size() != 3)
    throw Error(model + " needs image input [C, H, W], the dataflow gives " + std::to_string(ctx.input_shape.size()) +
                " dimensions");
}

/// A residual block; last_bn() is the BatchNorm that zero_init_residual zeroes.
class ResidualBlock : public torch::nn::Module {
 public:
  virtual torch::Tensor forward(const torch::Tensor& x) = 0;
  virtual BN last_bn() = 0;
};

/// Where the block changes the shape (stride or width), its shortcut is a 1x1 conv +
/// BatchNorm (`Projection`, torchvision's, module "downsample") or, parameter-free,
/// a stride-2 subsampling with zero channels appended (`ZeroPad`, He et al.'s option A).
enum class Shortcut { Projection, ZeroPad };

/// conv3x3-BN-ReLU-conv3x3-BN plus the shortcut, ReLU after the add (torchvision's
/// BasicBlock: modules conv1, bn1, conv2, bn2, downsample).
class BasicBlock final : public ResidualBlock {
 public:
  BasicBlock(int64_t in, int64_t out, int64_t stride, Shortcut shortcut = Shortcut::Projection)
      : conv1_(register_module("conv1", conv(in, out, 3, stride, 1))),
        bn1_(register_module("bn1", BN(out))),
        conv2_(register_module("conv2", conv(out, out, 3, 1, 1))),
        bn2_(register_module("bn2", BN(out))),
        reshapes_(stride != 1 || in != out),
        pad_((out - in) / 2) {
    if (reshapes_ && shortcut == Shortcut::Projection)
      downsample_ = register_module("downsample", torch::nn::Sequential(conv(in, out, 1, stride, 0), BN(out)));
  }
  torch::Tensor forward(const torch::Tensor& x) override {
    // BatchNorm, the shortcut's add and ReLU in one step (runner::nn's fused CPU kernel
    // where it applies; otherwise in place, as torchvision's ResNets).
    const torch::Tensor h = conv2_(bn1_->forward_relu(conv1_(x)));
    return bn2_->forward_relu(h, shortcut(x));
  }
  BN last_bn() override { return bn2_; }

 private:
  torch::Tensor shortcut(const torch::Tensor& x) {
    if (downsample_) return downsample_->forward(x);
    if (!reshapes_) return x;
    using torch::indexing::None;
    using torch::indexing::Slice;
    const torch::Tensor sub = x.index({Slice(), Slice(), Slice(0, None, 2), Slice(0, None, 2)});
    return torch::constant_pad_nd(sub, {0, 0, 0, 0, pad_, pad_});
  }

  torch::nn::Conv2d conv1_;
  BN bn1_;
  torch::nn::Conv2d conv2_;
  BN bn2_;
  bool reshapes_;
  int64_t pad_;
  torch::nn::Sequential downsample_{nullptr};
};

}  // namespace runner::plugins::models
