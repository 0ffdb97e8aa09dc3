// Image classification folders in the ImageNet / torchvision ImageFolder layout:
//   root/train/<class>/**/*.{jpg,jpeg,png}   root/val/<class>/**/*.{jpg,jpeg,png}
// Classes are the sub-folders of train/, sorted by name (torchvision's class indices);
// val/ must use the same names. Extensions are matched case-insensitively; other files
// are ignored. JPEG is decoded with libjpeg-turbo, at a reduced DCT scale (1/2, 1/4,
// 1/8) when the crop still has enough pixels; PNG with libpng.
// Train: RandomResizedCrop(image_size, scale, ratio) + horizontal flip + normalise.
// Val: resize the shorter side to resize_size + center crop image_size (computed as
// one resampling of the crop's box: the same pixels as resize-then-crop).
// Unreadable images raise SampleError: the loader skips them (counted and logged with
// their path) or fails, by `skip_bad_samples`.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <set>

#include <runner/plugin.hpp>

#include "image_io.hpp"
#include "params_util.hpp"

namespace fs = std::filesystem;
namespace image = runner::plugins::image;

namespace {

struct Sample {
  std::string path;
  int64_t label;
};

struct Transform {
  bool train = false;
  int size = 224;
  int resize = 256;
  double scale_lo = 0.08, scale_hi = 1.0, ratio_lo = 3.0 / 4, ratio_hi = 4.0 / 3;
  bool hflip = true;
  bool dct_scaling = true;
  runner::plugins::Normalisation norm;
};

// torchvision.transforms.RandomResizedCrop.get_params: a box (x, y, w, h) of the image.
void random_resized_crop(int width, int height, const Transform& t, runner::Rng& rng, double box[4]) {
  const double area = static_cast<double>(width) * height;
  const double log_lo = std::log(t.ratio_lo), log_hi = std::log(t.ratio_hi);
  for (int attempt = 0; attempt < 10; ++attempt) {
    const double target = area * (t.scale_lo + (t.scale_hi - t.scale_lo) * rng.uniform());
    const double aspect = std::exp(log_lo + (log_hi - log_lo) * rng.uniform());
    const int w = static_cast<int>(std::lround(std::sqrt(target * aspect)));
    const int h = static_cast<int>(std::lround(std::sqrt(target / aspect)));
    if (w > 0 && h > 0 && w <= width && h <= height) {
      box[1] = static_cast<double>(rng.uniform_int(0, height - h));
      box[0] = static_cast<double>(rng.uniform_int(0, width - w));
      box[2] = w;
      box[3] = h;
      return;
    }
  }
  // Fallback: a center crop at the nearest allowed aspect ratio.
  const double in_ratio = static_cast<double>(width) / height;
  int w = width, h = height;
  if (in_ratio < t.ratio_lo)
    h = static_cast<int>(std::lround(w / t.ratio_lo));
  else if (in_ratio > t.ratio_hi)
    w = static_cast<int>(std::lround(h * t.ratio_hi));
  box[0] = (width - w) / 2;
  box[1] = (height - h) / 2;
  box[2] = w;
  box[3] = h;
}

// torchvision Resize(resize) + CenterCrop(size), as a box of the original image.
void resize_center_crop(int width, int height, const Transform& t, double box[4]) {
  int ow, oh;
  if (width <= height) {
    ow = t.resize;
    oh = static_cast<int>(static_cast<int64_t>(t.resize) * height / width);
  } else {
    oh = t.resize;
    ow = static_cast<int>(static_cast<int64_t>(t.resize) * width / height);
  }
  const int top = static_cast<int>(std::lround((oh - t.size) / 2.0));
  const int left = static_cast<int>(std::lround((ow - t.size) / 2.0));
  const double sx = static_cast<double>(width) / ow, sy = static_cast<double>(height) / oh;
  box[0] = left * sx;
  box[1] = top * sy;
  box[2] = t.size * sx;
  box[3] = t.size * sy;
}

class ImageFolderDataset final : public runner::Dataset {
 public:
  ImageFolderDataset(std::shared_ptr<const std::vector<Sample>> samples, Transform t, int64_t max_samples)
      : samples_(std::move(samples)), t_(t) {
    n_ = static_cast<int64_t>(samples_->size());
    if (max_samples > 0) n_ = std::min(n_, max_samples);
  }
  int64_t size() const override { return n_; }
  std::vector<int64_t> sample_shape() const override { return {3, t_.size, t_.size}; }
  void get(int64_t index, float* out, int64_t* target, runner::Rng& rng) const override {
    const Sample& s = (*samples_)[static_cast<size_t>(index)];
    *target = s.label;
    const std::vector<uint8_t> bytes = image::read_file(s.path);
    int w = 0, h = 0;
    image::probe(bytes, s.path, &w, &h);
    double box[4];  // x, y, width, height in the original image
    if (t_.train)
      random_resized_crop(w, h, t_, rng, box);
    else
      resize_center_crop(w, h, t_, box);
    const bool flip = t_.train && t_.hflip && rng.bernoulli(0.5);
    // Decode at the smallest DCT scale that leaves the box at least `size` pixels wide and high.
    int min_w = w, min_h = h;
    if (t_.dct_scaling) {
      min_w = static_cast<int>(std::ceil(t_.size * w / box[2]));
      min_h = static_cast<int>(std::ceil(t_.size * h / box[3]));
    }
    const image::Image img = image::decode(bytes, s.path, std::min(min_w, w), std::min(min_h, h));
    const double sx = static_cast<double>(img.width) / w, sy = static_cast<double>(img.height) / h;
    image::resample_box(img, box[0] * sx, box[1] * sy, (box[0] + box[2]) * sx, (box[1] + box[3]) * sy, t_.size, t_.size,
                        t_.norm.mean.data(), t_.norm.std.data(), flip, out);
  }

 private:
  std::shared_ptr<const std::vector<Sample>> samples_;
  Transform t_;
  int64_t n_ = 0;
};

bool is_image_file(const fs::path& p) {
  std::string ext = p.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  return ext == ".jpg" || ext == ".jpeg" || ext == ".png";
}

std::vector<std::string> class_folders(const fs::path& dir) {
  std::vector<std::string> classes;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec))
    if (e.is_directory()) classes.push_back(e.path().filename().string());
  if (ec) throw runner::Error(dir.string() + ": cannot list: " + ec.message());
  std::sort(classes.begin(), classes.end());
  return classes;
}

// All images of `dir`, labelled by `classes` (the train folder's sorted class names).
std::shared_ptr<std::vector<Sample>> list_images(const fs::path& dir, const std::vector<std::string>& classes) {
  auto samples = std::make_shared<std::vector<Sample>>();
  const std::vector<std::string> here = class_folders(dir);
  if (here.empty())
    throw runner::ParamError(
        "root", "'" + dir.string() + "' has no class folders (expected " + dir.string() + "/<class>/<image>.jpg)");
  for (const std::string& name : here) {
    auto it = std::lower_bound(classes.begin(), classes.end(), name);
    if (it == classes.end() || *it != name)
      throw runner::ParamError("root", "'" + (dir / name).string() +
                                           "' is a class the train folder does not have (classes come from train/)");
    const int64_t label = it - classes.begin();
    std::vector<std::string> files;
    std::error_code ec;
    for (auto e = fs::recursive_directory_iterator(dir / name, fs::directory_options::follow_directory_symlink, ec);
         !ec && e != fs::recursive_directory_iterator(); e.increment(ec))
      if (e->is_regular_file() && is_image_file(e->path())) files.push_back(e->path().string());
    if (ec) throw runner::Error((dir / name).string() + ": cannot list: " + ec.message());
    if (files.empty())
      throw runner::ParamError("root", "class folder '" + (dir / name).string() +
                                           "' has no .jpg, .jpeg or .png file (remove it or add its images)");
    std::sort(files.begin(), files.end());
    for (auto& f : files) samples->push_back(Sample{std::move(f), label});
  }
  return samples;
}

runner::Schema schema() {
  runner::Schema s;
  s.add("root", runner::ParamType::String,
        "folder with train/<class>/*.jpg and val/<class>/*.jpg (the ImageNet layout; see the README's Data section)")
      .required();
  s.add("train_dir", runner::ParamType::String, "training sub-folder of root").def("train");
  s.add("val_dir", runner::ParamType::String, "validation sub-folder of root").def("val");
  runner::add_loader_params(s, 64);
  s.add("image_size", runner::ParamType::Int, "side of the square crop the model sees").def(224).min(8).max(4096);
  s.add("resize_size", runner::ParamType::Int, "validation: shorter side before the center crop")
      .def(256)
      .min(8)
      .max(4096);
  s.add("scale", runner::ParamType::List, "RandomResizedCrop area range (share of the image)")
      .def(std::vector<double>{0.08, 1.0});
  s.add("ratio", runner::ParamType::List, "RandomResizedCrop aspect-ratio range")
      .def(std::vector<double>{3.0 / 4.0, 4.0 / 3.0});
  s.add("augment", runner::ParamType::Bool, "train: RandomResizedCrop + flip (false: the validation transform)")
      .def(true);
  s.add("hflip", runner::ParamType::Bool, "random horizontal flip when augmenting").def(true);
  s.add("mean", runner::ParamType::List, "per-channel normalisation mean (pixel scale 0..1)")
      .def(std::vector<double>{0.485, 0.456, 0.406});
  s.add("std", runner::ParamType::List, "per-channel normalisation std (pixel scale 0..1)")
      .def(std::vector<double>{0.229, 0.224, 0.225});
  s.add("dct_scaling", runner::ParamType::Bool,
        "decode large JPEGs at 1/2, 1/4 or 1/8 size when the crop keeps >= image_size pixels (faster)")
      .def(true);
  s.add("skip_bad_samples", runner::ParamType::Bool,
        "unreadable images are logged with their path and replaced by the next image (false: the run fails)")
      .def(true);
  s.add("train_eval_size", runner::ParamType::Int,
        "also evaluate on this many training images (fixed random subset, validation transform; 0: off)")
      .def(0)
      .min(0);
  s.add("max_train_samples", runner::ParamType::Int, "use only the first N training images (0: all)").def(0).min(0);
  s.add("max_val_samples", runner::ParamType::Int, "use only the first N validation images (0: all)").def(0).min(0);
  return s;
}

runner::Dataflow make(const runner::Params& p, const runner::DataflowContext& ctx) {
  const fs::path root = p.get<std::string>("root");
  std::error_code ec;
  if (!fs::is_directory(root, ec)) throw runner::ParamError("root", "folder '" + root.string() + "' does not exist");
  const fs::path train_dir = root / p.get<std::string>("train_dir"), val_dir = root / p.get<std::string>("val_dir");
  for (const auto& [dir, key] : {std::pair{train_dir, "train_dir"}, std::pair{val_dir, "val_dir"}})
    if (!fs::is_directory(dir, ec))
      throw runner::ParamError(key, "folder '" + dir.string() + "' does not exist (expected root/" +
                                        dir.filename().string() + "/<class>/<image>.jpg)");

  Transform eval;
  eval.size = p.get<int>("image_size");
  eval.resize = p.get<int>("resize_size");
  if (eval.resize < eval.size)
    throw runner::ParamError("resize_size", "must be >= image_size (" + std::to_string(eval.size) + ")");
  const auto scale = runner::plugins::number_list(p, "scale", 2, "[min, max] area shares, such as [0.08, 1.0]");
  const auto ratio = runner::plugins::number_list(p, "ratio", 2, "[min, max] aspect ratios, such as [0.75, 1.3333]");
  if (!(scale[0] > 0 && scale[0] <= scale[1] && scale[1] <= 1))
    throw runner::ParamError("scale", "expected 0 < min <= max <= 1");
  if (!(ratio[0] > 0 && ratio[0] <= ratio[1])) throw runner::ParamError("ratio", "expected 0 < min <= max");
  eval.norm = runner::plugins::read_normalisation(p);
  eval.dct_scaling = p.get<bool>("dct_scaling");
  Transform train = eval;
  train.train = p.get<bool>("augment");
  train.scale_lo = scale[0];
  train.scale_hi = scale[1];
  train.ratio_lo = ratio[0];
  train.ratio_hi = ratio[1];
  train.hflip = p.get<bool>("hflip");

  const std::vector<std::string> classes = class_folders(train_dir);
  if (classes.empty())
    throw runner::ParamError("root", "'" + train_dir.string() + "' has no class folders (expected " +
                                         train_dir.string() + "/<class>/<image>.jpg)");
  auto train_samples = list_images(train_dir, classes);
  auto val_samples = list_images(val_dir, classes);

  runner::Dataflow df;
  runner::read_loader_params(p, df);
  df.num_classes = static_cast<int64_t>(classes.size());
  df.skip_bad_samples = p.get<bool>("skip_bad_samples");
  const int64_t max_train = p.get<int64_t>("max_train_samples");
  df.train = std::make_shared<ImageFolderDataset>(train_samples, train, max_train);
  df.val = std::make_shared<ImageFolderDataset>(val_samples, eval, p.get<int64_t>("max_val_samples"));
  if (const int64_t n = p.get<int64_t>("train_eval_size"); n > 0)
    df.train_eval =
        runner::random_subset(std::make_shared<ImageFolderDataset>(train_samples, eval, max_train), n, ctx.seed);
  df.description =
      "imagefolder " + root.string() + " (" + std::to_string(classes.size()) + " classes; train: " +
      (train.train ? "random resized crop " + std::to_string(train.size) + (train.hflip ? " + flip" : "")
                   : "resize " + std::to_string(eval.resize) + " + center crop " + std::to_string(eval.size)) +
      "; val: resize " + std::to_string(eval.resize) + " + center crop " + std::to_string(eval.size) +
      (eval.dct_scaling ? "; JPEG DCT scaling)" : ")");
  return df;
}

}  // namespace

RUNNER_REGISTER_DATAFLOW("imagefolder",
                         "class-per-folder JPEG/PNG images (ImageNet layout), RandomResizedCrop / resize + center crop",
                         schema, make)
