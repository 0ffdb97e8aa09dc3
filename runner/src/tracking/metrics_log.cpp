#include "tracking/metrics_log.hpp"

#include <charconv>
#include <cmath>
#include <fstream>

#include "runner/error.hpp"
#include "runner/utf8.hpp"
#include "util/files.hpp"
#include "util/strings.hpp"

namespace runner::tracking {
namespace {

void append_key(std::string& out, const std::string& key) {
  static const char* hex = "0123456789abcdef";
  out += '"';
  for (const char c : key) {
    const auto u = static_cast<unsigned char>(c);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (u < 0x20)
          out += std::string("\\u00") + hex[u >> 4] + hex[u & 15];
        else
          out += c;
    }
  }
  out += '"';
}

std::string json_number(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "Infinity" : "-Infinity";
  return shortest(v);
}

// A reader of one line of JSON: the subset metrics.jsonl uses (an object of numbers).
struct Cursor {
  const std::string& s;
  size_t i = 0;
  void ws() {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r' || s[i] == '\n')) ++i;
  }
  bool eat(char c) {
    ws();
    if (i >= s.size() || s[i] != c) return false;
    ++i;
    return true;
  }
  bool word(const char* w) {
    const size_t n = std::char_traits<char>::length(w);
    if (s.compare(i, n, w) != 0) return false;
    i += n;
    return true;
  }
};

bool hex4(Cursor& c, uint32_t* out) {
  if (c.i + 4 > c.s.size()) return false;
  uint32_t v = 0;
  const auto r = std::from_chars(c.s.data() + c.i, c.s.data() + c.i + 4, v, 16);
  if (r.ec != std::errc() || r.ptr != c.s.data() + c.i + 4) return false;
  c.i += 4;
  *out = v;
  return true;
}

// After "\u": one code point, a surrogate pair joined.
bool unicode_escape(Cursor& c, std::string& out) {
  uint32_t cp = 0, low = 0;
  if (!hex4(c, &cp)) return false;
  if (cp >= 0xd800 && cp < 0xdc00 && c.word("\\u")) {
    if (!hex4(c, &low) || low < 0xdc00 || low >= 0xe000) return false;
    cp = 0x10000 + ((cp - 0xd800) << 10) + (low - 0xdc00);
  }
  append_utf8(out, static_cast<char32_t>(cp));
  return true;
}

// A JSON string. An unknown escape is kept as it stands (older files wrote keys raw).
bool parse_string(Cursor& c, std::string* out) {
  if (!c.eat('"')) return false;
  out->clear();
  while (c.i < c.s.size()) {
    const char ch = c.s[c.i++];
    if (ch == '"') return true;
    if (ch != '\\') {
      *out += ch;
      continue;
    }
    if (c.i >= c.s.size()) return false;
    const char e = c.s[c.i++];
    switch (e) {
      case '"':
      case '\\':
      case '/': *out += e; break;
      case 'n': *out += '\n'; break;
      case 'r': *out += '\r'; break;
      case 't': *out += '\t'; break;
      case 'b': *out += '\b'; break;
      case 'f': *out += '\f'; break;
      case 'u':
        if (!unicode_escape(c, *out)) return false;
        break;
      default: *out += '\\', *out += e;
    }
  }
  return false;  // torn: no closing quote
}

// A JSON number, NaN, Infinity, -Infinity or null (NaN).
bool parse_number(Cursor& c, double* v) {
  c.ws();
  static const std::pair<const char*, double> kWords[] = {
      {"NaN", NAN}, {"null", NAN}, {"Infinity", INFINITY}, {"-Infinity", -INFINITY}};
  for (const auto& [w, x] : kWords)
    if (c.word(w)) {
      *v = x;
      return true;
    }
  const size_t digit = c.i < c.s.size() && c.s[c.i] == '-' ? c.i + 1 : c.i;
  if (digit >= c.s.size() || c.s[digit] < '0' || c.s[digit] > '9') return false;
  const char* end = c.s.data() + c.s.size();
  const auto r = std::from_chars(c.s.data() + c.i, end, *v);
  if (r.ec != std::errc()) return false;
  c.i = static_cast<size_t>(r.ptr - c.s.data());
  return true;
}

bool counter(double v, int64_t* out) {
  if (!(std::fabs(v) < 9.2e18) || v != std::floor(v)) return false;
  *out = static_cast<int64_t>(v);
  return true;
}

}  // namespace

std::string metrics_log_path(const std::string& run_dir) { return run_dir + "/metrics.jsonl"; }

std::string format_record(int64_t iteration, int64_t epoch, const Values& values) {
  std::string line = "{\"iteration\": " + std::to_string(iteration) + ", \"epoch\": " + std::to_string(epoch);
  for (const auto& [k, v] : values) {
    line += ", ";
    append_key(line, k);
    line += ": " + json_number(v);
  }
  return line + "}\n";
}

bool parse_record(const std::string& line, Row* row) {
  Cursor c{line};
  if (!c.eat('{')) return false;
  bool has_iteration = false, has_epoch = false, first = true;
  std::string key;
  while (!c.eat('}')) {
    if (!first && !c.eat(',')) return false;
    first = false;
    double v = 0;
    if (!parse_string(c, &key) || !c.eat(':') || !parse_number(c, &v)) return false;
    if (key == "iteration" && !has_iteration) {
      if (!counter(v, &row->iteration)) return false;
      has_iteration = true;
    } else if (key == "epoch" && !has_epoch) {
      if (!counter(v, &row->epoch)) return false;
      has_epoch = true;
    } else {
      row->values.emplace_back(key, v);
    }
  }
  c.ws();
  return has_iteration && c.i == line.size();
}

MetricsLog::MetricsLog(const std::string& path) {
  f_ = std::fopen(path.c_str(), "a");
  if (!f_) throw Error(path + ": cannot open for writing");
}

MetricsLog::~MetricsLog() {
  if (f_) std::fclose(f_);
}

void MetricsLog::write(int64_t iteration, int64_t epoch, const Values& values) {
  const std::string line = format_record(iteration, epoch, values);
  std::fwrite(line.data(), 1, line.size(), f_);
  std::fflush(f_);
}

History read_metrics(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw Error(path + ": cannot read (is this a run folder?)");
  History h;
  std::string line;
  for (int n = 1; std::getline(in, line); ++n) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    Row r;
    if (!parse_record(line, &r))
      throw Error(path + ":" + std::to_string(n) + ": not a metrics record ({\"iteration\": N, \"key\": value, ...})");
    h.add(r.iteration, r.epoch, r.values);
  }
  return h;
}

void truncate_metrics(const std::string& run_dir, int64_t iteration) {
  const std::string path = metrics_log_path(run_dir);
  std::ifstream in(path);
  std::string kept, line;
  while (std::getline(in, line)) {
    Row r;
    if (parse_record(line, &r) && r.iteration <= iteration) kept += line + "\n";
  }
  in.close();
  util::write_file_atomic(path, kept);
}

}  // namespace runner::tracking
