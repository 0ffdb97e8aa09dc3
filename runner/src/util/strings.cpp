#include "util/strings.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <utility>

namespace runner {

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const bool same =
          std::tolower(static_cast<unsigned char>(a[i - 1])) == std::tolower(static_cast<unsigned char>(b[j - 1]));
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (same ? 0 : 1)});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

namespace {

std::string lower(std::string s) {
  for (char& ch : s) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return s;
}

// Names users bring from other tools (PyTorch scripts, Hugging Face, Lightning, torchrun) for
// keys and values that runner calls otherwise; edit distance finds none of them ("gpu" is
// nearer to "cpu" than to "cuda", "fp32" to "fp16" than to "none").
const char* alias_of(const std::string& word) {
  static const std::pair<const char*, const char*> aliases[] = {
      {"output_dir", "output_path"},
      {"output_directory", "output_path"},
      {"out_dir", "output_path"},
      {"log_dir", "output_path"},
      {"logdir", "output_path"},
      {"save_dir", "output_path"},
      {"learning_rate", "lr"},
      {"wd", "weight_decay"},
      {"epochs", "num_epochs"},
      {"max_epochs", "num_epochs"},
      {"bs", "batch_size"},
      {"loss", "criterion"},
      {"criterium", "criterion"},
      {"lr_scheduler", "scheduler"},
      {"data", "dataflow"},
      {"dataset", "dataflow"},
      {"dataloader", "dataflow"},
      {"network", "model"},
      {"net", "model"},
      {"arch", "model"},
      {"gpu", "cuda"},
      {"cuda:0", "cuda"},
      {"fp32", "none"},
      {"float32", "none"},
      {"float", "none"},
      {"off", "none"},
      {"bfloat16", "bf16"},
      {"float16", "fp16"},
      {"half", "fp16"},
  };
  const std::string w = lower(word);
  for (const auto& [alias, name] : aliases)
    if (w == alias) return name;
  return nullptr;
}

}  // namespace

std::string closest_match(const std::string& word, const std::vector<std::string>& candidates) {
  if (const char* name = alias_of(word))
    if (std::find(candidates.begin(), candidates.end(), name) != candidates.end()) return name;
  std::string best;
  size_t best_d = static_cast<size_t>(-1);
  for (const auto& c : candidates) {
    const size_t d = edit_distance(word, c);
    if (d < best_d) best_d = d, best = c;
  }
  const size_t limit = std::max<size_t>(2, word.size() / 3);
  // A prefix/substring relation ("lr" vs "lr_min") is also a plausible slip.
  if (best_d <= limit) return best;
  for (const auto& c : candidates)
    if (word.size() >= 3 && (c.find(word) != std::string::npos || word.find(c) != std::string::npos)) return c;
  return "";
}

std::string did_you_mean(const std::string& word, const std::vector<std::string>& candidates) {
  const std::string m = closest_match(word, candidates);
  return m.empty() ? std::string() : "; did you mean '" + m + "'?";
}

std::string first_line(std::string text) {
  if (auto nl = text.find('\n'); nl != std::string::npos) text.resize(nl);
  return text;
}

std::string join(const std::vector<std::string>& items, const std::string& sep) {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) out += (i ? sep : "") + items[i];
  return out;
}

bool parse_duration(const std::string& text, double* seconds) {
  double total = 0;
  size_t i = 0;
  while (i < text.size()) {
    const char* start = text.c_str() + i;
    char* end = nullptr;
    const double v = std::strtod(start, &end);
    if (end == start || v < 0 || *end == '\0' || *start == '+' || *start == '-') return false;
    i = static_cast<size_t>(end - text.c_str());
    switch (text[i++]) {
      case 's': total += v; break;
      case 'm': total += v * 60; break;
      case 'h': total += v * 3600; break;
      case 'd': total += v * 86400; break;
      default: return false;
    }
  }
  if (text.empty() || !std::isfinite(total)) return false;
  *seconds = total;
  return true;
}

std::string shortest(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  char buf[32];  // the longest shortest form is 24 characters ("-2.2250738585072014e-308")
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, r.ptr);
}

}  // namespace runner
