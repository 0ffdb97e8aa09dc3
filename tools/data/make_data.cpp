// Writes small data sets in the real on-disk formats, for tests and benchmarks (nothing
// can be downloaded here):
//   runner_make_data imagefolder OUT [--classes 4] [--train-per-class 8] [--val-per-class 2]
//                    [--min-size 48] [--max-size 320] [--png-every 4] [--corrupt 0] [--seed 1]
//       OUT/{train,val}/class_XX/img_NNNNN.{jpg,png}: JPEG (quality 90, 4:2:0) and every
//       Nth image PNG, random sizes; each class has its own colour and stripe direction
//       (learnable). --corrupt N adds N unreadable files to train/class_00 (a truncated
//       JPEG, random bytes named .jpg, an empty .png, ...).
//   runner_make_data cifar10 OUT [--train 500] [--test 100] [--seed 1]
//       OUT/cifar-10-batches-bin/data_batch_{1..5}.bin + test_batch.bin
//   runner_make_data cifar100 OUT [--train 500] [--test 100] [--seed 1]
//       OUT/cifar-100-binary/{train,test}.bin
// Prints one line with what it wrote.
#include <png.h>
#include <turbojpeg.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

namespace fs = std::filesystem;

namespace {

struct Args {
  std::string kind, out;
  std::map<std::string, long> opt;
  long get(const std::string& k, long def) const {
    auto it = opt.find(k);
    return it == opt.end() ? def : it->second;
  }
};

void write_bytes(const fs::path& p, const void* data, size_t n) {
  std::ofstream f(p, std::ios::binary);
  f.write(static_cast<const char*>(data), static_cast<std::streamsize>(n));
  if (!f) throw std::runtime_error(p.string() + ": cannot write");
}

// An RGB image for class `c`: the class's colour, stripes at the class's angle, noise.
std::vector<uint8_t> class_image(int c, int classes, int w, int h, std::mt19937& rng) {
  std::vector<uint8_t> px(static_cast<size_t>(w) * h * 3);
  const double hue = 6.283185307 * c / classes, angle = 3.14159265 * c / classes;
  const double base[3] = {128 + 90 * std::cos(hue), 128 + 90 * std::cos(hue + 2.094), 128 + 90 * std::cos(hue + 4.188)};
  const double ca = std::cos(angle), sa = std::sin(angle), period = 6 + 0.05 * std::max(w, h);
  std::normal_distribution<double> noise(0, 12);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      const double stripe = 40 * std::sin((x * ca + y * sa) * 6.283185307 / period);
      for (int k = 0; k < 3; ++k) {
        const double v = base[k] + stripe + noise(rng);
        px[(static_cast<size_t>(y) * w + x) * 3 + k] = static_cast<uint8_t>(std::min(255.0, std::max(0.0, v)));
      }
    }
  return px;
}

std::vector<uint8_t> encode_jpeg(const std::vector<uint8_t>& px, int w, int h) {
  tjhandle tj = tjInitCompress();
  unsigned char* buf = nullptr;
  unsigned long size = 0;
  if (tjCompress2(tj, px.data(), w, 0, h, TJPF_RGB, &buf, &size, TJSAMP_420, 90, 0) != 0)
    throw std::runtime_error(std::string("JPEG encoding failed: ") + tjGetErrorStr2(tj));
  std::vector<uint8_t> out(buf, buf + size);
  tjFree(buf);
  tjDestroy(tj);
  return out;
}

void write_png(const fs::path& p, const std::vector<uint8_t>& px, int w, int h) {
  png_image img;
  std::memset(&img, 0, sizeof img);
  img.version = PNG_IMAGE_VERSION;
  img.width = static_cast<png_uint_32>(w);
  img.height = static_cast<png_uint_32>(h);
  img.format = PNG_FORMAT_RGB;
  if (!png_image_write_to_file(&img, p.c_str(), 0, px.data(), 0, nullptr))
    throw std::runtime_error(p.string() + ": PNG encoding failed: " + img.message);
}

int make_imagefolder(const Args& a) {
  const int classes = static_cast<int>(a.get("classes", 4));
  const int per_train = static_cast<int>(a.get("train-per-class", 8));
  const int per_val = static_cast<int>(a.get("val-per-class", 2));
  const int lo = static_cast<int>(a.get("min-size", 48)), hi = static_cast<int>(a.get("max-size", 320));
  const int png_every = static_cast<int>(a.get("png-every", 4));
  const int corrupt = static_cast<int>(a.get("corrupt", 0));
  std::mt19937 rng(static_cast<uint32_t>(a.get("seed", 1)));
  std::uniform_int_distribution<int> size(lo, hi);
  long written = 0, bytes = 0;
  for (const auto& [split, per] : {std::pair<std::string, int>{"train", per_train}, {"val", per_val}}) {
    for (int c = 0; c < classes; ++c) {
      char name[32];
      std::snprintf(name, sizeof name, "class_%02d", c);
      const fs::path dir = fs::path(a.out) / split / name;
      fs::create_directories(dir);
      for (int i = 0; i < per; ++i) {
        const int w = size(rng), h = size(rng);
        const auto px = class_image(c, classes, w, h, rng);
        char file[32];
        const bool png = png_every > 0 && (i % png_every) == png_every - 1;
        std::snprintf(file, sizeof file, "img_%05d.%s", i, png ? "png" : "jpg");
        if (png) {
          write_png(dir / file, px, w, h);
        } else {
          const auto jpg = encode_jpeg(px, w, h);
          write_bytes(dir / file, jpg.data(), jpg.size());
        }
        bytes += static_cast<long>(fs::file_size(dir / file));
        ++written;
      }
    }
  }
  // Unreadable files, all in train/class_00, named to sort after the good ones.
  const fs::path bad_dir = fs::path(a.out) / "train" / "class_00";
  for (int i = 0; i < corrupt; ++i) {
    char file[32];
    switch (i % 4) {
      case 0: {  // a JPEG cut in half
        const auto px = class_image(0, classes, 120, 90, rng);
        const auto jpg = encode_jpeg(px, 120, 90);
        std::snprintf(file, sizeof file, "zz_truncated_%02d.jpg", i);
        write_bytes(bad_dir / file, jpg.data(), jpg.size() / 2);
        break;
      }
      case 1: {  // random bytes
        std::vector<uint8_t> junk(4096);
        for (auto& b : junk) b = static_cast<uint8_t>(rng());
        std::snprintf(file, sizeof file, "zz_garbage_%02d.jpg", i);
        write_bytes(bad_dir / file, junk.data(), junk.size());
        break;
      }
      case 2:  // empty
        std::snprintf(file, sizeof file, "zz_empty_%02d.png", i);
        write_bytes(bad_dir / file, "", 0);
        break;
      default: {  // a PNG with its image data cut off
        const auto px = class_image(0, classes, 64, 64, rng);
        const fs::path tmp = bad_dir / "tmp.png";
        write_png(tmp, px, 64, 64);
        std::ifstream in(tmp, std::ios::binary);
        std::vector<char> all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        fs::remove(tmp);
        std::snprintf(file, sizeof file, "zz_cut_%02d.png", i);
        write_bytes(bad_dir / file, all.data(), all.size() / 2);
      }
    }
  }
  std::printf("imagefolder %s: %d classes, %ld images (%.1f MB), %d unreadable\n", a.out.c_str(), classes, written,
              bytes / 1e6, corrupt);
  return 0;
}

// CIFAR records: label byte(s) + 3072 planar pixels; classes get their own colour.
int make_cifar(const Args& a, bool hundred) {
  const long n_train = a.get("train", 500), n_test = a.get("test", 100);
  std::mt19937 rng(static_cast<uint32_t>(a.get("seed", 1)));
  const int classes = hundred ? 100 : 10;
  const fs::path dir = fs::path(a.out) / (hundred ? "cifar-100-binary" : "cifar-10-batches-bin");
  fs::create_directories(dir);
  auto records = [&](long n) {
    std::vector<uint8_t> out;
    for (long i = 0; i < n; ++i) {
      const int fine = static_cast<int>(rng() % classes);
      if (hundred) out.push_back(static_cast<uint8_t>(fine / 5));  // coarse label: 20 superclasses
      out.push_back(static_cast<uint8_t>(fine));
      const auto px = class_image(fine, classes, 32, 32, rng);  // interleaved -> planar
      for (int k = 0; k < 3; ++k)
        for (int p = 0; p < 1024; ++p) out.push_back(px[static_cast<size_t>(p) * 3 + k]);
    }
    return out;
  };
  if (hundred) {
    const auto tr = records(n_train), te = records(n_test);
    write_bytes(dir / "train.bin", tr.data(), tr.size());
    write_bytes(dir / "test.bin", te.data(), te.size());
  } else {
    for (int b = 1; b <= 5; ++b) {
      const long n = n_train / 5 + (b <= n_train % 5 ? 1 : 0);
      const auto recs = records(n);
      write_bytes(dir / ("data_batch_" + std::to_string(b) + ".bin"), recs.data(), recs.size());
    }
    const auto te = records(n_test);
    write_bytes(dir / "test_batch.bin", te.data(), te.size());
  }
  std::printf("%s %s: %ld train, %ld test records\n", hundred ? "cifar100" : "cifar10", dir.c_str(), n_train, n_test);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    if (argc < 3) {
      std::fprintf(stderr, "usage: %s imagefolder|cifar10|cifar100 OUT [--key value ...]\n", argv[0]);
      return 2;
    }
    Args a;
    a.kind = argv[1];
    a.out = argv[2];
    for (int i = 3; i + 1 < argc; i += 2) {
      if (std::strncmp(argv[i], "--", 2) != 0) throw std::runtime_error(std::string("expected --key, got ") + argv[i]);
      a.opt[argv[i] + 2] = std::stol(argv[i + 1]);
    }
    if (a.kind == "imagefolder") return make_imagefolder(a);
    if (a.kind == "cifar10") return make_cifar(a, false);
    if (a.kind == "cifar100") return make_cifar(a, true);
    throw std::runtime_error("unknown kind '" + a.kind + "' (imagefolder, cifar10, cifar100)");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
