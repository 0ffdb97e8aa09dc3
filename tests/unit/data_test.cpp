// IDX reading and the batch loader.
#include <zlib.h>

#include <set>

#include "data/loader.hpp"
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

std::vector<std::vector<float>> epoch_of(runner::Loader& l, int64_t epoch) {
  std::vector<std::vector<float>> out;
  l.start_epoch(epoch);
  runner::Batch b;
  while (l.next(b)) out.emplace_back(b.input.data_ptr<float>(), b.input.data_ptr<float>() + b.input.numel());
  return out;
}

}  // namespace

TEST_SUITE("data") {
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
    CHECK(std::vector<float>(b.input.data_ptr<float>(), b.input.data_ptr<float>() + b.input.numel()) == full[1]);
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
