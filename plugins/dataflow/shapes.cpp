// Generated shapes for semantic segmentation: 1 to `max_shapes` circles, squares and
// triangles (random size, position, rotation, colour and texture) on a textured background.
// "input" is the RGB image [3, H, W] (about zero mean, unit scale); "target" the class of
// every pixel [H, W] (0 background, 1 circle, 2 square, 3 triangle; a later shape covers an
// earlier one), with `ignore_index` on a band of `border` pixels around every class boundary
// (as VOC marks its object outlines). Training samples are drawn afresh every epoch from the
// loader's per-sample generator; validation samples are a fixed function of their index.
#include <algorithm>
#include <array>
#include <cmath>
#include <runner/plugin.hpp>

namespace {

constexpr int64_t kClasses = 4;
constexpr double kPi = 3.14159265358979323846;

struct Shape {
  int64_t cls = 0;
  double cx = 0, cy = 0, r = 0, angle = 0;
  bool contains(double x, double y) const {
    const double dx = x - cx, dy = y - cy;
    const double u = std::cos(angle) * dx + std::sin(angle) * dy, v = -std::sin(angle) * dx + std::cos(angle) * dy;
    if (cls == 1) return u * u + v * v <= r * r;
    if (cls == 2) return std::abs(u) <= r * 0.85 && std::abs(v) <= r * 0.85;
    // An equilateral triangle with its centre at (cx, cy): inside all three edges.
    for (int k = 0; k < 3; ++k) {
      const double a = 2 * kPi * k / 3;
      if (std::cos(a) * u + std::sin(a) * v > r * 0.5) return false;
    }
    return true;
  }
};

// A colour with stripes of a random frequency and orientation, plus per-pixel noise.
struct Texture {
  std::array<double, 3> colour{}, stripe{};
  double fx = 0, fy = 0, phase = 0, noise = 0;
  static Texture random(runner::Rng& rng) {
    Texture t;
    for (int c = 0; c < 3; ++c) t.colour[c] = rng.uniform() * 2 - 1, t.stripe[c] = (rng.uniform() - 0.5) * 0.6;
    const double f = 0.1 + rng.uniform() * 0.5, a = rng.uniform() * kPi;
    t.fx = f * std::cos(a), t.fy = f * std::sin(a), t.phase = rng.uniform() * 2 * kPi,
    t.noise = 0.1 + 0.2 * rng.uniform();
    return t;
  }
  double at(int c, double x, double y, runner::Rng& rng) const {
    return colour[c] + stripe[c] * std::sin(fx * x + fy * y + phase) + noise * rng.normal();
  }
};

class ShapesDataset final : public runner::Dataset {
 public:
  ShapesDataset(int64_t n, int64_t size, int64_t max_shapes, int64_t border, int64_t ignore, bool fresh, uint64_t seed)
      : n_(n), size_(size), max_shapes_(max_shapes), border_(border), ignore_(ignore), fresh_(fresh), seed_(seed) {}
  int64_t size() const override { return n_; }
  runner::Fields fields() const override {
    return {{"input", torch::kFloat32, {3, size_, size_}, {}}, {"target", torch::kInt64, {size_, size_}, {}}};
  }
  void get(int64_t index, const runner::Sample& out, runner::Rng& loader_rng) const override {
    runner::Rng rng = fresh_ ? loader_rng : runner::Rng(runner::splitmix64(seed_) ^ static_cast<uint64_t>(index));
    std::vector<Shape> shapes(static_cast<size_t>(rng.uniform_int(1, max_shapes_)));
    std::vector<Texture> textures = {Texture::random(rng)};
    const double s = static_cast<double>(size_);
    for (Shape& sh : shapes) {
      sh.cls = rng.uniform_int(1, kClasses - 1);
      sh.r = s * (0.12 + 0.18 * rng.uniform());
      sh.cx = sh.r + rng.uniform() * (s - 2 * sh.r), sh.cy = sh.r + rng.uniform() * (s - 2 * sh.r);
      sh.angle = rng.uniform() * 2 * kPi;
      textures.push_back(Texture::random(rng));
    }
    int64_t* target = out.data<int64_t>("target");
    float* image = out.data<float>("input");
    const int64_t hw = size_ * size_;
    std::vector<int64_t> owner(static_cast<size_t>(hw), 0);  // index into textures
    for (int64_t y = 0; y < size_; ++y)
      for (int64_t x = 0; x < size_; ++x) {
        int64_t o = 0;
        for (size_t k = 0; k < shapes.size(); ++k)
          if (shapes[k].contains(static_cast<double>(x) + 0.5, static_cast<double>(y) + 0.5))
            o = static_cast<int64_t>(k) + 1;
        owner[static_cast<size_t>(y * size_ + x)] = o;
        target[y * size_ + x] = o == 0 ? 0 : shapes[static_cast<size_t>(o - 1)].cls;
        for (int c = 0; c < 3; ++c)
          image[c * hw + y * size_ + x] = static_cast<float>(
              textures[static_cast<size_t>(o)].at(c, static_cast<double>(x), static_cast<double>(y), rng));
      }
    mark_borders(target);
  }

 private:
  // Pixels within `border_` of a pixel of another class get the ignore index.
  void mark_borders(int64_t* target) const {
    if (border_ == 0) return;
    const std::vector<int64_t> cls(target, target + size_ * size_);
    for (int64_t y = 0; y < size_; ++y)
      for (int64_t x = 0; x < size_; ++x) {
        const int64_t c = cls[static_cast<size_t>(y * size_ + x)];
        bool edge = false;
        for (int64_t dy = -border_; dy <= border_ && !edge; ++dy)
          for (int64_t dx = -border_; dx <= border_ && !edge; ++dx) {
            const int64_t yy = y + dy, xx = x + dx;
            edge = yy >= 0 && yy < size_ && xx >= 0 && xx < size_ && cls[static_cast<size_t>(yy * size_ + xx)] != c;
          }
        if (edge) target[y * size_ + x] = ignore_;
      }
  }

  int64_t n_, size_, max_shapes_, border_, ignore_;
  bool fresh_;
  uint64_t seed_;
};

runner::Schema schema() {
  runner::Schema s;
  s.add("image_size", runner::ParamType::Int, "height and width of the images").def(64).min(16).max(1024);
  s.add("max_shapes", runner::ParamType::Int, "shapes per image: 1 to this many").def(3).min(1).max(16);
  s.add("border", runner::ParamType::Int, "width of the ignored band around class boundaries (0: none)")
      .def(1)
      .min(0)
      .max(8);
  s.add("ignore_index", runner::ParamType::Int, "target value of the band (the criterion's ignore_index)").def(-100);
  s.add("train_size", runner::ParamType::Int, "training images per epoch (drawn afresh each epoch)").def(4096).min(1);
  s.add("val_size", runner::ParamType::Int, "validation images (the same every epoch)").def(512).min(1);
  runner::add_loader_params(s, 32);
  return s;
}

runner::Dataflow make(const runner::Params& p, const runner::DataflowContext& ctx) {
  const int64_t size = p.get<int64_t>("image_size"), shapes = p.get<int64_t>("max_shapes");
  const int64_t border = p.get<int64_t>("border"), ignore = p.get<int64_t>("ignore_index");
  if (ignore >= 0 && ignore < kClasses)
    throw runner::ParamError("ignore_index", "is a class (0..3); use a negative value or >= 4, e.g. -100 or 255");
  runner::Dataflow df;
  df.train = std::make_shared<ShapesDataset>(p.get<int64_t>("train_size"), size, shapes, border, ignore, true, 0);
  df.val = std::make_shared<ShapesDataset>(p.get<int64_t>("val_size"), size, shapes, border, ignore, false,
                                           ctx.seed ^ 0x5A4E5ull);
  runner::read_loader_params(p, df);
  df.num_classes = kClasses;
  df.description = "shapes: " + std::to_string(size) + "x" + std::to_string(size) + " images, up to " +
                   std::to_string(shapes) + " circles/squares/triangles on textured backgrounds, 4 classes, border " +
                   std::to_string(border) + " px ignored (" + std::to_string(ignore) + ")";
  return df;
}

}  // namespace

RUNNER_REGISTER_DATAFLOW("shapes", "generated shapes on textured backgrounds, per-pixel classes (segmentation)", schema,
                         make)
