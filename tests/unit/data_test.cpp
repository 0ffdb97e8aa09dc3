// IDX reading and the batch loader.
#include <zlib.h>

#include <set>

#include "../../plugins/dataflow/planar_augment.hpp"
#include "data/loader.hpp"
#include "data/prefetch.hpp"
#include "runner/arrays.hpp"
#include "runner/idx.hpp"
#include "test_util.hpp"

namespace {

// Sample i is filled with i; the target is i % 10; augmentation draws one number.
class CountingDataset : public runner::Dataset {
 public:
  explicit CountingDataset(int64_t n) : n_(n) {}
  int64_t size() const override { return n_; }
  std::vector<int64_t> sample_shape() const override { return {2}; }
  void get(int64_t i, float* out, int64_t* t, runner::Rng& rng) const override {
    out[0] = static_cast<float>(i);
    out[1] = static_cast<float>(rng.uniform());
    *t = i % 10;
  }

 private:
  int64_t n_;
};

// Named fields of mixed dtypes; "ids" has a variable length (i % 4 + 1 ids, then the pad).
class RecordDataset : public runner::Dataset {
 public:
  int64_t size() const override { return 6; }
  runner::Fields fields() const override {
    return {{"x", torch::kFloat32, {2}, {}},
            {"ids", torch::kInt64, {4}, -1.0},
            {"length", torch::kInt64, {}, {}},
            {"mask", torch::kUInt8, {2, 2}, {}}};
  }
  void get(int64_t i, const runner::Sample& out, runner::Rng&) const override {
    float* x = out.data<float>("x");
    x[0] = static_cast<float>(i), x[1] = static_cast<float>(i) + 0.5f;
    const int64_t n = i % 4 + 1;
    for (int64_t k = 0; k < n; ++k) out.data<int64_t>("ids")[k] = 10 * i + k;
    *out.data<int64_t>("length") = n;
    out.tensor("mask").fill_(static_cast<uint8_t>(i));
  }
};

std::vector<std::vector<float>> epoch_of(runner::Loader& l, int64_t epoch) {
  std::vector<std::vector<float>> out;
  l.start_epoch(epoch);
  runner::Batch b;
  while (l.next(b))
    out.emplace_back(b.data.at("input").data_ptr<float>(),
                     b.data.at("input").data_ptr<float>() + b.data.at("input").numel());
  return out;
}

// Records what the prefetcher asks of the device copy: "start b<first sample>" and
// "ready b<first sample>", with the batch the step is given in between.
class RecordingTransfer : public runner::device::Transfer {
 public:
  explicit RecordingTransfer(std::vector<std::string>& log) : log_(log) {}
  Token start(const std::vector<torch::Tensor*>& t) override {
    CHECK(t.size() == 2);  // every tensor of the batch moves
    log_.push_back("start b" + std::to_string(static_cast<int>(t[0]->data_ptr<float>()[0])));
    return std::make_shared<int>(static_cast<int>(t[0]->data_ptr<float>()[0]));
  }
  void ready(const std::vector<torch::Tensor*>& t, const Token& token) override {
    CHECK(*static_cast<int*>(token.get()) == static_cast<int>(t[0]->data_ptr<float>()[0]));  // its own copy
    log_.push_back("ready b" + std::to_string(*static_cast<int*>(token.get())));
  }

 private:
  std::vector<std::string>& log_;
};

}  // namespace

TEST_SUITE("data") {
  TEST_CASE("crop with constant or reflect padding and flip: each output pixel is the padded image's, as defined") {
    // 2 planes of 5 x 7 distinct bytes; for many draws, the output against the definition:
    // pad by `pad` with `fill` (or by reflection without repeating the edge, torchvision's
    // "reflect"), crop at (pad + dy, pad + dx), mirror the columns when flipped.
    const int channels = 2;
    const int64_t h = 5, w = 7;
    std::vector<uint8_t> img(channels * h * w);
    for (size_t i = 0; i < img.size(); ++i) img[i] = static_cast<uint8_t>(3 + i);
    const auto reflected = [](int64_t s, int64_t n) { return s < 0 ? -s : s >= n ? 2 * n - 2 - s : s; };
    for (const auto& [pad, reflect] :
         std::vector<std::pair<int, bool>>{{1, false}, {3, false}, {9, false}, {1, true}, {4, true}}) {
      CAPTURE(pad);
      CAPTURE(reflect);
      runner::plugins::PlanarAugment aug;
      aug.pad = pad;
      aug.reflect = reflect;
      aug.fill = 1;
      aug.hflip = true;
      const float mean[2] = {0.5f, 0.25f}, std[2] = {0.5f, 2.0f};
      aug.set_normalisation(channels, mean, std);
      std::set<std::pair<int64_t, bool>> seen;
      for (uint64_t seed = 0; seed < 200; ++seed) {
        runner::Rng rng(seed), draws(seed);
        std::vector<float> out(img.size());
        aug.apply(img.data(), channels, h, w, rng, out.data());
        const int64_t dy = draws.uniform_int(-pad, pad), dx = draws.uniform_int(-pad, pad);
        const bool flip = draws.bernoulli(0.5);
        seen.insert({dx, flip});
        for (int c = 0; c < channels; ++c)
          for (int64_t y = 0; y < h; ++y)
            for (int64_t x = 0; x < w; ++x) {
              int64_t sy = y + dy, sx = (flip ? w - 1 - x : x) + dx;
              if (reflect) sy = reflected(sy, h), sx = reflected(sx, w);
              const bool inside = sy >= 0 && sy < h && sx >= 0 && sx < w;
              const uint8_t v = inside ? img[(c * h + sy) * w + sx] : aug.fill;
              REQUIRE(out[(c * h + y) * w + x] == aug.lut[c][v]);
            }
      }
      CHECK(seen.size() == static_cast<size_t>(2 * (2 * pad + 1)));  // every shift, flipped and not
    }
  }

  TEST_CASE("named fields of mixed dtypes collate into one tensor each; a variable length is padded") {
    runner::LoaderOptions o;
    o.global_batch = 4;
    o.num_workers = 1;
    runner::Loader loader(std::make_shared<RecordDataset>(), o);
    loader.start_epoch(1);
    runner::Batch b;
    REQUIRE(loader.next(b));
    CHECK(b.size() == 4);
    CHECK(b.data.size() == 4);
    CHECK(b.data.at("x").sizes().vec() == std::vector<int64_t>{4, 2});
    CHECK((b.data.at("x").scalar_type() == torch::kFloat32));
    CHECK((b.data.at("ids").scalar_type() == torch::kInt64));
    CHECK(b.data.at("length").sizes().vec() == std::vector<int64_t>{4});
    CHECK((b.data.at("mask").scalar_type() == torch::kUInt8));
    CHECK(b.data.at("mask").sizes().vec() == std::vector<int64_t>{4, 2, 2});
    for (int64_t r = 0; r < 4; ++r) {
      CHECK(b.data.at("x")[r][1].item<float>() == static_cast<float>(r) + 0.5f);
      CHECK(b.data.at("length")[r].item<int64_t>() == r % 4 + 1);
      CHECK(b.data.at("mask")[r].sum().item<int64_t>() == 4 * r);
      for (int64_t k = 0; k < 4; ++k)  // written ids, then the declared pad value
        CHECK(b.data.at("ids")[r][k].item<int64_t>() == (k < r % 4 + 1 ? 10 * r + k : -1));
    }
    REQUIRE(loader.next(b));
    CHECK(b.size() == 2);  // the last, partial batch
    CHECK(!loader.next(b));
  }

  TEST_CASE("a sample's fields are checked: name, dtype; declarations must be sound") {
    runner::Fields fields = {{"x", torch::kFloat32, {2}, {}}};
    runner::Sample s(fields);
    float mem[2];
    s.set_data(0, mem);
    CHECK(s.data<float>("x") == mem);
    CHECK_THROWS_WITH(s.data<int64_t>("x"), "sample field 'x' is Float, not Long");
    CHECK_THROWS_WITH(s.data<float>("y"), "sample has no field 'y' (its fields: x)");
    struct Twice : RecordDataset {
      runner::Fields fields() const override { return {{"a", torch::kFloat32, {1}, {}}, {"a", torch::kInt64, {}, {}}}; }
    };
    CHECK_THROWS_WITH(runner::Loader(std::make_shared<Twice>(), runner::LoaderOptions{}),
                      "loader: the dataset declares the field 'a' twice");
    struct Empty : RecordDataset {
      runner::Fields fields() const override { return {{"a", torch::kFloat32, {0}, {}}}; }
    };
    CHECK_THROWS_WITH(runner::Loader(std::make_shared<Empty>(), runner::LoaderOptions{}),
                      "loader: field 'a' has a dimension < 1 (variable lengths: declare the maximum and a pad value)");
  }

  TEST_CASE("the device prefetcher (pin_memory off): batch i+1's copy starts before batch i is used") {
    for (int workers : {0, 2}) {
      CAPTURE(workers);
      runner::LoaderOptions o;
      o.global_batch = 4;
      o.num_workers = workers;
      o.pin_memory = false;  // no CUDA here: plain host memory, the same queue
      runner::Loader loader(std::make_shared<CountingDataset>(10), o);
      std::vector<std::string> log;
      runner::DevicePrefetcher p(loader, std::make_unique<RecordingTransfer>(log));
      CHECK(p.batches_per_epoch() == 3);
      runner::Batch b;
      p.start_epoch(1);
      std::vector<int64_t> seen;
      while (p.next(b)) {
        seen.push_back(b.index);
        log.push_back("step b" + std::to_string(static_cast<int>(b.data.at("input")[0][0].item<float>())));
      }
      CHECK(seen == std::vector<int64_t>{0, 1, 2});
      CHECK(log == std::vector<std::string>{"start b0", "start b4", "ready b0", "step b0", "start b8", "ready b4",
                                            "step b4", "ready b8", "step b8"});
      // A restart mid-epoch (resume) drops the batch in flight and begins at the given batch.
      log.clear();
      p.start_epoch(2, 1);
      p.next(b);
      CHECK(b.index == 1);
      p.start_epoch(2, 2);
      CHECK(p.next(b));
      CHECK(b.index == 2);
      CHECK_FALSE(p.next(b));
    }
  }

  TEST_CASE(".npy and .safetensors round-trip every dtype; broken files are errors naming the file") {
    test::TempDir d;
    const std::map<std::string, torch::Tensor> tensors = {
        {"f32", torch::arange(6, torch::kFloat32).view({2, 3})},
        {"i64", torch::tensor({-1, 5, 7}, torch::kInt64)},
        {"u8", torch::tensor({0, 255}, torch::kUInt8)},
        {"bool", torch::tensor({true, false})},
        {"bf16", torch::tensor({1.5, -2.0}).to(torch::kBFloat16)},
        {"nchw", torch::randn({2, 3, 4, 5}).contiguous(at::MemoryFormat::ChannelsLast)}};
    const std::string st = (d.path / "t.safetensors").string();
    runner::write_safetensors(st, tensors);
    const auto back = runner::read_safetensors(st);
    REQUIRE(back.size() == tensors.size());
    for (const auto& [name, t] : tensors) {
      CAPTURE(name);
      CHECK((back.at(name).scalar_type() == t.scalar_type()));
      CHECK(back.at(name).equal(t));  // values in logical (NCHW) order
    }
    for (const std::string name : {"f32", "i64", "u8", "bool"}) {
      const std::string npy = (d.path / (name + ".npy")).string();
      runner::write_npy(npy, tensors.at(name));
      CHECK(runner::read_npy(npy).equal(tensors.at(name)));
    }
    const std::string bad = d.write("bad.npy", "not numpy");
    CHECK_THROWS_WITH(runner::read_npy(bad), (bad + ": not a .npy file").c_str());
    const std::string trunc = d.write("t2.safetensors", std::string("\x10\0\0\0\0\0\0\0{}", 10));
    CHECK_THROWS_WITH(runner::read_safetensors(trunc), (trunc + ": not a .safetensors file").c_str());
  }

  TEST_CASE("IDX files round-trip, gzip and plain") {
    test::TempDir d;
    runner::IdxArray a{{3, 2, 2}, {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 255}};
    for (bool gz : {true, false}) {
      const std::string p = (d.path / (gz ? "a.gz" : "a")).string();
      runner::write_idx(p, a, gz);
      const runner::IdxArray b = runner::read_idx(p);
      CHECK(b.dims == a.dims);
      CHECK(b.data == a.data);
    }
  }

  TEST_CASE("broken IDX files are errors naming the file") {
    test::TempDir d;
    auto err = [](const std::string& p) {
      try {
        runner::read_idx(p);
      } catch (const runner::Error& e) {
        return std::string(e.what());
      }
      return std::string("no error");
    };
    CHECK(err((d.path / "missing").string()).find("cannot open") != std::string::npos);
    const auto bad_magic = d.write("bad", "\x01\x02\x08\x01xxxx");
    CHECK(err(bad_magic).find(bad_magic + ": not an IDX file") == 0);
    runner::IdxArray a{{10, 4}, std::vector<uint8_t>(40, 1)};
    const std::string full = (d.path / "full").string();
    runner::write_idx(full, a, false);
    std::filesystem::resize_file(full, 4 + 8 + 20);
    CHECK(err(full).find("truncated") != std::string::npos);
    const auto float_type = d.write("float", std::string("\x00\x00\x0d\x01\x00\x00\x00\x01", 8) + "abcd");
    CHECK(err(float_type).find("not supported") != std::string::npos);
  }

  TEST_CASE("one permutation per epoch, and the ranks' batches are exactly the single-process batches") {
    auto ds = std::make_shared<CountingDataset>(103);
    runner::LoaderOptions o;
    o.global_batch = 10;
    o.shuffle = true;
    o.seed = 7;
    o.num_workers = 2;
    runner::Loader single(ds, o);
    CHECK(single.batches_per_epoch() == 11);
    const auto e1 = epoch_of(single, 1);
    const auto e2 = epoch_of(single, 2);
    std::set<float> seen;
    for (const auto& b : e1)
      for (size_t i = 0; i < b.size(); i += 2) seen.insert(b[i]);
    CHECK(seen.size() == 103);         // every sample exactly once
    CHECK(e1 != e2);                   // a new order each epoch
    CHECK(e1 == epoch_of(single, 1));  // and the same order again for the same epoch

    for (int world : {2, 3}) {
      std::vector<std::vector<std::vector<float>>> per_rank;
      for (int r = 0; r < world; ++r) {
        runner::LoaderOptions ro = o;
        ro.rank = r;
        ro.world_size = world;
        ro.num_workers = r;  // thread count must not matter
        runner::Loader l(ds, ro);
        per_rank.push_back(epoch_of(l, 1));
      }
      for (size_t b = 0; b < e1.size(); ++b) {
        std::vector<float> joined;
        for (int r = 0; r < world; ++r) joined.insert(joined.end(), per_rank[r][b].begin(), per_rank[r][b].end());
        CHECK(joined == e1[b]);
      }
    }
  }

  TEST_CASE("drop_last, resuming mid-epoch, and worker errors") {
    auto ds = std::make_shared<CountingDataset>(25);
    runner::LoaderOptions o;
    o.global_batch = 10;
    o.drop_last = true;
    runner::Loader l(ds, o);
    CHECK(l.batches_per_epoch() == 2);
    const auto full = epoch_of(l, 1);
    l.start_epoch(1, 1);
    runner::Batch b;
    REQUIRE(l.next(b));
    CHECK(b.index == 1);
    CHECK(std::vector<float>(b.data.at("input").data_ptr<float>(),
                             b.data.at("input").data_ptr<float>() + b.data.at("input").numel()) == full[1]);
    CHECK_FALSE(l.next(b));

    class Failing : public CountingDataset {
     public:
      Failing() : CountingDataset(30) {}
      void get(int64_t i, float* out, int64_t* t, runner::Rng& rng) const override {
        if (i == 17) throw runner::Error("sample 17 is corrupt");
        CountingDataset::get(i, out, t, rng);
      }
    };
    runner::LoaderOptions fo;
    fo.global_batch = 5;
    fo.num_workers = 2;
    runner::Loader fl(std::make_shared<Failing>(), fo);
    fl.start_epoch(1);
    CHECK_THROWS_WITH_AS(
        [&] {
          while (fl.next(b)) {
          }
        }(),
        "sample 17 is corrupt", runner::Error);
  }

}  // TEST_SUITE
