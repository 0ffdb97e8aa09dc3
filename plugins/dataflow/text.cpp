// Character-level language modelling on UTF-8 text files. Each file's first
// (1 - val_fraction) of characters is training text, the rest validation text. The
// vocabulary is every character of the training text plus U+FFFD for a character it does
// not have; it is written to the run folder and kept in checkpoints as vocab.yaml, with
// the unigram and bigram bits per character of the validation text (the baselines a
// model must beat). A sample is `block_size` characters ("input") and the next character
// at each position ("target"): training samples start at random offsets (a fresh draw
// each epoch), validation samples are the validation text's consecutive blocks.
#include <fnmatch.h>
#include <glob.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <runner/error.hpp>
#include <runner/plugin.hpp>
#include <runner/utf8.hpp>
#include <set>
#include <sstream>

namespace {

namespace fs = std::filesystem;
using Text = std::vector<int64_t>;  // token ids

const char32_t kUnknown = 0xFFFD;

std::vector<std::string> list_param(const runner::Params& p, const std::string& key) {
  const YAML::Node n = p.node(key);
  if (n.IsScalar()) return {n.Scalar()};
  try {
    return n.as<std::vector<std::string>>();
  } catch (const YAML::Exception&) {
    throw runner::ParamError(key, "expected a path or glob, or a list of them");
  }
}

// The files the globs name, minus those whose name matches an `exclude` glob; each
// file once (by its real path: a symlink to a listed file adds nothing), in path order.
std::vector<std::string> expand(const std::vector<std::string>& globs, const std::vector<std::string>& exclude) {
  std::map<std::string, std::string> by_real;  // real path -> path as found
  for (const std::string& pattern : globs) {
    glob_t g{};
    const int rc = ::glob(pattern.c_str(), 0, nullptr, &g);
    std::vector<std::string> found(g.gl_pathv, g.gl_pathv + (rc == 0 ? g.gl_pathc : 0));
    globfree(&g);
    if (found.empty()) throw runner::ParamError("files", "'" + pattern + "' matches no file");
    for (const std::string& f : found) {
      const std::string name = fs::path(f).filename().string();
      const bool excluded = std::any_of(exclude.begin(), exclude.end(),
                                        [&](const std::string& x) { return fnmatch(x.c_str(), name.c_str(), 0) == 0; });
      std::error_code ec;
      if (excluded || !fs::is_regular_file(f, ec)) continue;
      by_real.emplace(fs::canonical(f, ec).string(), f);
    }
  }
  std::vector<std::string> out;
  for (const auto& [real, f] : by_real) out.push_back(f);
  std::sort(out.begin(), out.end());
  if (out.empty()) throw runner::ParamError("files", "names no regular file once `exclude` is applied");
  return out;
}

// UTF-8 to code points; a malformed sequence is an error naming the file and the offset.
std::u32string decode(const std::string& bytes, const std::string& path) {
  std::u32string out;
  out.reserve(bytes.size());
  for (size_t i = 0; i < bytes.size();) {
    const unsigned char c = static_cast<unsigned char>(bytes[i]);
    const int len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    char32_t cp = len == 1 ? c : len == 2 ? (c & 0x1F) : len == 3 ? (c & 0x0F) : (c & 0x07);
    bool ok = len > 0 && i + static_cast<size_t>(len) <= bytes.size();
    for (int k = 1; ok && k < len; ++k) {
      const unsigned char d = static_cast<unsigned char>(bytes[i + static_cast<size_t>(k)]);
      ok = (d >> 6) == 2;
      cp = (cp << 6) | (d & 0x3F);
    }
    if (!ok)
      throw runner::ParamError("files", path + ": not UTF-8 text (bad byte at offset " + std::to_string(i) + ")");
    out.push_back(cp);
    i += static_cast<size_t>(len);
  }
  return out;
}

std::string encode(char32_t cp) {
  std::string s;
  runner::append_utf8(s, cp);
  return s;
}

struct Corpus {
  Text train, val;
  std::vector<char32_t> vocab;  // id -> code point
  double unigram_bpc = 0, bigram_bpc = 0;
  int64_t files = 0;
};

Corpus read_corpus(const std::vector<std::string>& paths, double val_fraction) {
  std::u32string train, val;
  for (const std::string& path : paths) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream bytes;
    bytes << in.rdbuf();
    if (!in) throw runner::ParamError("files", path + ": cannot be read");
    const std::u32string text = decode(bytes.str(), path);
    const size_t cut = text.size() - static_cast<size_t>(std::llround(val_fraction * static_cast<double>(text.size())));
    train += text.substr(0, cut);
    val += text.substr(cut);
  }
  Corpus c;
  c.files = static_cast<int64_t>(paths.size());
  std::set<char32_t> chars(train.begin(), train.end());
  chars.insert(kUnknown);
  c.vocab.assign(chars.begin(), chars.end());
  std::map<char32_t, int64_t> id;
  for (size_t i = 0; i < c.vocab.size(); ++i) id[c.vocab[i]] = static_cast<int64_t>(i);
  const int64_t unknown = id.at(kUnknown);
  auto ids = [&](const std::u32string& s) {
    Text t(s.size());
    for (size_t i = 0; i < s.size(); ++i) {
      auto it = id.find(s[i]);
      t[i] = it == id.end() ? unknown : it->second;
    }
    return t;
  };
  c.train = ids(train);
  c.val = ids(val);
  return c;
}

// Bits per character of the validation text's next characters (positions 1..n-1, as a
// model sees them) under unigram and bigram models counted on the training text: add-one
// unigram; bigram with a Dirichlet prior (weight 1) towards the unigram.
void baselines(Corpus& c) {
  const size_t v = c.vocab.size();
  std::vector<double> uni(v, 1.0), from(v, 0.0), pair(v * v, 0.0);
  for (size_t i = 0; i < c.train.size(); ++i) {
    uni[static_cast<size_t>(c.train[i])] += 1;
    if (i + 1 < c.train.size()) {
      from[static_cast<size_t>(c.train[i])] += 1;
      pair[static_cast<size_t>(c.train[i]) * v + static_cast<size_t>(c.train[i + 1])] += 1;
    }
  }
  const double total = static_cast<double>(c.train.size() + v);
  double u = 0, b = 0;
  for (size_t i = 1; i < c.val.size(); ++i) {
    const size_t prev = static_cast<size_t>(c.val[i - 1]), cur = static_cast<size_t>(c.val[i]);
    const double pu = uni[cur] / total;
    u -= std::log2(pu);
    b -= std::log2((pair[prev * v + cur] + pu) / (from[prev] + 1.0));
  }
  const double n = static_cast<double>(std::max<size_t>(1, c.val.size() - 1));
  c.unigram_bpc = u / n;
  c.bigram_bpc = b / n;
}

std::string vocab_yaml(const Corpus& c) {
  YAML::Emitter out;
  out << YAML::BeginMap << YAML::Key << "tokens" << YAML::Value << YAML::Flow << YAML::BeginSeq;
  for (char32_t cp : c.vocab) out << YAML::DoubleQuoted << encode(cp);
  out << YAML::EndSeq << YAML::Key << "unknown" << YAML::Value << encode(kUnknown);
  out << YAML::Key << "train_characters" << YAML::Value << c.train.size();
  out << YAML::Key << "val_characters" << YAML::Value << c.val.size();
  out << YAML::Key << "val_unigram_bits_per_char" << YAML::Value << c.unigram_bpc;
  out << YAML::Key << "val_bigram_bits_per_char" << YAML::Value << c.bigram_bpc << YAML::EndMap;
  return std::string(out.c_str()) + "\n";
}

class TextBlocks final : public runner::Dataset {
 public:
  // `random`: `n` blocks at random offsets; else the consecutive blocks of `text`.
  TextBlocks(std::shared_ptr<const Text> text, int64_t block, int64_t n, bool random)
      : text_(std::move(text)), block_(block), n_(n), random_(random) {}
  int64_t size() const override { return n_; }
  runner::Fields fields() const override {
    return {{"input", torch::kInt64, {block_}, {}}, {"target", torch::kInt64, {block_}, {}}};
  }
  void get(int64_t index, const runner::Sample& out, runner::Rng& rng) const override {
    const int64_t last_start = static_cast<int64_t>(text_->size()) - block_ - 1;
    const int64_t start = random_ ? rng.uniform_int(0, last_start) : index * block_;
    const int64_t* from = text_->data() + start;
    std::copy(from, from + block_, out.data<int64_t>("input"));
    std::copy(from + 1, from + block_ + 1, out.data<int64_t>("target"));
  }

 private:
  std::shared_ptr<const Text> text_;
  int64_t block_, n_;
  bool random_;
};

runner::Schema schema() {
  runner::Schema s;
  s.add("files", runner::ParamType::Any, "UTF-8 text files: a path or glob, or a list of them").required();
  s.add("exclude", runner::ParamType::Any, "file-name globs to leave out, e.g. ['*.dat']")
      .def(std::vector<std::string>{});
  s.add("val_fraction", runner::ParamType::Float, "share of each file (its end) held out for validation")
      .def(0.1)
      .min(0.001)
      .max(0.5);
  s.add("block_size", runner::ParamType::Int, "characters per sample (the model's context)").def(128).min(2);
  s.add("train_samples", runner::ParamType::Int, "random blocks per training epoch").def(20000).min(1);
  s.add("val_blocks", runner::ParamType::Int, "validation blocks evaluated (0: all of the validation text)")
      .def(0)
      .min(0);
  runner::add_loader_params(s, 32);
  return s;
}

runner::Dataflow make(const runner::Params& p, const runner::DataflowContext&) {
  const auto paths = expand(list_param(p, "files"), list_param(p, "exclude"));
  Corpus c = read_corpus(paths, p.get<double>("val_fraction"));
  baselines(c);
  const int64_t block = p.get<int64_t>("block_size");
  const int64_t val_fit = (static_cast<int64_t>(c.val.size()) - 1) / block;
  if (static_cast<int64_t>(c.train.size()) < block + 2)
    throw runner::ParamError("block_size",
                             "is longer than the training text (" + std::to_string(c.train.size()) + " characters)");
  if (val_fit < 1)
    throw runner::ParamError("val_fraction", "leaves " + std::to_string(c.val.size()) +
                                                 " validation characters, less than one block of " +
                                                 std::to_string(block) + " + 1");
  const int64_t val_blocks =
      p.get<int64_t>("val_blocks") > 0 ? std::min(p.get<int64_t>("val_blocks"), val_fit) : val_fit;
  runner::Dataflow df;
  df.train =
      std::make_shared<TextBlocks>(std::make_shared<const Text>(c.train), block, p.get<int64_t>("train_samples"), true);
  df.val = std::make_shared<TextBlocks>(std::make_shared<const Text>(c.val), block, val_blocks, false);
  runner::read_loader_params(p, df);
  df.num_classes = static_cast<int64_t>(c.vocab.size());
  df.files["vocab.yaml"] = vocab_yaml(c);
  char buf[320];
  std::snprintf(buf, sizeof buf,
                "text: %lld files, %zu training and %zu validation characters, %zu-character vocabulary, blocks of "
                "%lld | val baselines: unigram %.3f, bigram %.3f bits/char",
                static_cast<long long>(c.files), c.train.size(), c.val.size(), c.vocab.size(),
                static_cast<long long>(block), c.unigram_bpc, c.bigram_bpc);
  df.description = buf;
  return df;
}

}  // namespace

RUNNER_REGISTER_DATAFLOW("text", "character-level language modelling on UTF-8 text files (next-character targets)",
                         schema, make)
