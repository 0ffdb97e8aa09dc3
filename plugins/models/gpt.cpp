// A GPT (decoder-only transformer) for next-token prediction, after nanoGPT: token and
// position embeddings, `layers` pre-norm blocks of causal self-attention
// (torch::scaled_dot_product_attention) and a 4x GELU MLP, a final LayerNorm and an output
// layer that shares the token embedding's weight (registered under both names, as
// PyTorch's `lm_head.weight = wte.weight`; the runner steps and counts it once).
// Reads "input" [N, T] int64 token ids (T <= the dataflow's block size); returns "logits"
// [N, V, T], classes in dimension 1 as cross_entropy and the metrics expect.
#include <cmath>
#include <runner/plugin.hpp>

#include "common.hpp"

namespace {

using runner::ParamType;

struct GptOptions {
  int64_t vocab = 0, block = 0, layers = 4, heads = 4, width = 128;
  double dropout = 0;
};

class AttentionImpl : public torch::nn::Module {
 public:
  explicit AttentionImpl(const GptOptions& o)
      : heads_(o.heads),
        dropout_(o.dropout),
        qkv_(register_module("qkv", torch::nn::Linear(o.width, 3 * o.width))),
        proj_(register_module("proj", torch::nn::Linear(o.width, o.width))) {}
  torch::Tensor forward(const torch::Tensor& x) {
    const int64_t n = x.size(0), t = x.size(1), c = x.size(2);
    auto parts = qkv_->forward(x).view({n, t, 3, heads_, c / heads_}).permute({2, 0, 3, 1, 4}).unbind(0);
    const torch::Tensor y = at::scaled_dot_product_attention(parts[0], parts[1], parts[2], /*attn_mask=*/{},
                                                             is_training() ? dropout_ : 0.0, /*is_causal=*/true);
    return proj_->forward(y.transpose(1, 2).reshape({n, t, c}));
  }
  torch::nn::Linear proj() { return proj_; }

 private:
  int64_t heads_;
  double dropout_;
  torch::nn::Linear qkv_, proj_;
};
TORCH_MODULE(Attention);

class BlockImpl : public torch::nn::Module {
 public:
  explicit BlockImpl(const GptOptions& o)
      : ln1_(register_module("ln1", torch::nn::LayerNorm(torch::nn::LayerNormOptions({o.width})))),
        attn_(register_module("attn", Attention(o))),
        ln2_(register_module("ln2", torch::nn::LayerNorm(torch::nn::LayerNormOptions({o.width})))),
        fc_(register_module("fc", torch::nn::Linear(o.width, 4 * o.width))),
        out_(register_module("out", torch::nn::Linear(4 * o.width, o.width))),
        drop_(register_module("drop", torch::nn::Dropout(o.dropout))) {}
  torch::Tensor forward(torch::Tensor x) {
    x = x + drop_->forward(attn_->forward(ln1_->forward(x)));
    return x + drop_->forward(out_->forward(torch::gelu(fc_->forward(ln2_->forward(x)))));
  }
  // The layers that write into the residual stream (scaled at initialisation).
  std::vector<torch::nn::Linear> residual_outputs() { return {attn_->proj(), out_}; }

 private:
  torch::nn::LayerNorm ln1_;
  Attention attn_;
  torch::nn::LayerNorm ln2_;
  torch::nn::Linear fc_, out_;
  torch::nn::Dropout drop_;
};
TORCH_MODULE(Block);

// The output layer: logits = x W^T with W the token embedding's weight.
class TiedHeadImpl : public torch::nn::Module {
 public:
  explicit TiedHeadImpl(const torch::Tensor& weight) : weight_(register_parameter("weight", weight)) {}
  torch::Tensor forward(const torch::Tensor& x) { return torch::linear(x, weight_); }

 private:
  torch::Tensor weight_;
};
TORCH_MODULE(TiedHead);

class Gpt final : public runner::Model {
 public:
  explicit Gpt(const GptOptions& o)
      : block_(o.block),
        wte_(register_module("wte", torch::nn::Embedding(o.vocab, o.width))),
        wpe_(register_module("wpe", torch::nn::Embedding(o.block, o.width))),
        drop_(register_module("drop", torch::nn::Dropout(o.dropout))),
        blocks_(register_module("blocks", torch::nn::ModuleList())),
        ln_f_(register_module("ln_f", torch::nn::LayerNorm(torch::nn::LayerNormOptions({o.width})))),
        head_(register_module("lm_head", TiedHead(wte_->weight))) {
    for (int64_t i = 0; i < o.layers; ++i) blocks_->push_back(Block(o));
    init_weights(o.layers);
  }

  torch::Tensor forward(torch::Tensor tokens) override {
    const int64_t t = tokens.size(1);
    if (t > block_)
      throw runner::Error("gpt: " + std::to_string(t) + " tokens, more than its block size " + std::to_string(block_));
    const torch::Tensor pos = torch::arange(t, torch::TensorOptions().dtype(torch::kInt64).device(tokens.device()));
    torch::Tensor x = drop_->forward(wte_->forward(tokens) + wpe_->forward(pos));
    for (size_t i = 0; i < blocks_->size(); ++i)
      x = trace("blocks." + std::to_string(i), blocks_->ptr<BlockImpl>(i)->forward(x));
    x = trace("ln_f", ln_f_->forward(x));
    return trace("lm_head", head_->forward(x)).transpose(1, 2);  // [N, V, T]
  }

 private:
  // GPT-2's: N(0, 0.02) weights, zero biases, the residual outputs scaled by 1/sqrt(2 layers).
  void init_weights(int64_t layers) {
    torch::NoGradGuard no_grad;
    for (auto& m : modules(/*include_self=*/false)) {
      if (auto* l = m->as<torch::nn::Linear>()) {
        l->weight.normal_(0.0, 0.02);
        if (l->bias.defined()) l->bias.zero_();
      } else if (auto* e = m->as<torch::nn::Embedding>()) {
        e->weight.normal_(0.0, 0.02);
      }
    }
    for (size_t i = 0; i < blocks_->size(); ++i)
      for (auto& l : blocks_->ptr<BlockImpl>(i)->residual_outputs())
        l->weight.normal_(0.0, 0.02 / std::sqrt(2.0 * static_cast<double>(layers)));
  }

  int64_t block_;
  torch::nn::Embedding wte_, wpe_;
  torch::nn::Dropout drop_;
  torch::nn::ModuleList blocks_;
  torch::nn::LayerNorm ln_f_;
  TiedHead head_;
};

runner::Schema schema() {
  runner::Schema s;
  s.add("layers", ParamType::Int, "transformer blocks").def(4).min(1);
  s.add("heads", ParamType::Int, "attention heads per block (width must divide by it)").def(4).min(1);
  s.add("width", ParamType::Int, "embedding width").def(128).min(1);
  s.add("dropout", ParamType::Float, "dropout on embeddings, attention and residual branches").def(0.0).min(0).max(0.9);
  return s;
}

std::shared_ptr<runner::Model> make(const runner::Params& p, const runner::ModelContext& ctx) {
  GptOptions o;
  o.layers = p.get<int64_t>("layers");
  o.heads = p.get<int64_t>("heads");
  o.width = p.get<int64_t>("width");
  o.dropout = p.get<double>("dropout");
  if (o.width % o.heads != 0)
    throw runner::ParamError(
        "heads", "width " + std::to_string(o.width) + " does not divide into " + std::to_string(o.heads) + " heads");
  if (ctx.input_shape.size() != 1 || ctx.num_classes < 1)
    throw runner::Error(
        "gpt needs token sequences: an int64 \"input\" field [T] and a vocabulary (num_classes); "
        "the dataflow gives an input of " +
        std::to_string(ctx.input_shape.size()) + " dimensions and " + std::to_string(ctx.num_classes) + " classes");
  o.vocab = ctx.num_classes;
  o.block = ctx.input_shape[0];
  return std::make_shared<Gpt>(o);
}

}  // namespace

RUNNER_REGISTER_MODEL("gpt", "decoder-only transformer for next-token prediction (tied embedding, causal attention)",
                      schema, make)
