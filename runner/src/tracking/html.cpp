#include "tracking/html.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>

namespace runner::tracking {
namespace {

const char* const kPalette[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
                                "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};
constexpr int kColors = sizeof(kPalette) / sizeof(kPalette[0]);

std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

// At most `n` points: means of equal index buckets (keeps the shape of noisy curves).
Series reduce(const Series& s, size_t n) {
  if (s.size() <= n) return s;
  Series out;
  out.reserve(n);
  for (size_t b = 0; b < n; ++b) {
    const size_t lo = s.size() * b / n, hi = s.size() * (b + 1) / n;
    double x = 0, y = 0;
    size_t k = 0;
    for (size_t i = lo; i < hi; ++i) {
      if (!std::isfinite(s[i].second)) continue;
      x += static_cast<double>(s[i].first);
      y += s[i].second;
      ++k;
    }
    if (k) out.emplace_back(static_cast<int64_t>(std::llround(x / k)), y / k);
  }
  return out;
}

// A "nice" tick step (1, 2 or 5 times a power of ten) for about `n` ticks over `span`.
double nice_step(double span, int n) {
  if (!(span > 0)) return 1;
  const double raw = span / n, p = std::pow(10.0, std::floor(std::log10(raw)));
  const double m = raw / p;
  return (m < 1.5 ? 1 : m < 3.5 ? 2 : m < 7.5 ? 5 : 10) * p;
}

std::string tick_text(double v, double step) {
  if (std::fabs(v) < step * 1e-9) return "0";
  if (std::fabs(v) >= 1e5 || std::fabs(v) < 1e-3) return fmt("%.2g", v);
  const int decimals = std::max(0, static_cast<int>(std::ceil(-std::log10(step) - 1e-9)));
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

}  // namespace

std::string html_escape(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

Series smooth(const Series& s, double alpha) {
  Series out;
  out.reserve(s.size());
  double m = NAN;
  for (const auto& [x, y] : s) {
    if (std::isfinite(y)) m = std::isnan(m) ? y : m + alpha * (y - m);
    out.emplace_back(x, m);
  }
  return out;
}

namespace {

constexpr double W = 560, H = 300, L = 64, R = 14, T = 30, B = 58;  // chart size and margins

// The data range of a chart and its mapping to pixels.
struct Frame {
  double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
  double xstep = 1, ystep = 1;
  bool empty() const { return !(x0 <= x1); }
  void include(double x, double y) {
    x0 = std::min(x0, x);
    x1 = std::max(x1, x);
    y0 = std::min(y0, y);
    y1 = std::max(y1, y);
  }
  // Non-degenerate ranges, y widened to whole ticks.
  void settle() {
    if (x1 == x0) x1 = x0 + 1;
    if (y1 == y0) {
      const double pad = y0 == 0 ? 1 : std::fabs(y0) * 0.05;
      y0 -= pad;
      y1 += pad;
    }
    ystep = nice_step(y1 - y0, 5);
    y0 = std::floor(y0 / ystep) * ystep;
    y1 = std::ceil(y1 / ystep) * ystep;
    xstep = nice_step(x1 - x0, 6);
  }
  double px(double x) const { return L + (x - x0) / (x1 - x0) * (W - L - R); }
  double py(double y) const { return T + (y1 - y) / (y1 - y0) * (H - T - B); }
};

// Each curve reduced to at most 1000 points (log10 of the positive values with log_y).
std::vector<Series> chart_data(const std::vector<Curve>& curves, bool log_y, Frame* frame) {
  std::vector<Series> data;
  for (const auto& c : curves) {
    Series s = reduce(c.points, 1000);
    if (log_y) {
      Series pos;
      for (const auto& p : s)
        if (p.second > 0) pos.emplace_back(p.first, std::log10(p.second));
      s = pos;
    }
    for (const auto& [x, y] : s)
      if (std::isfinite(y)) frame->include(static_cast<double>(x), y);
    data.push_back(std::move(s));
  }
  return data;
}

std::string chart_grid(const Frame& f, const std::string& x_label, bool log_y) {
  std::string svg = "<g class=\"grid\">";
  for (double y = f.y0; y <= f.y1 + f.ystep * 1e-6; y += f.ystep) {
    svg += "<line x1=\"" + fmt("%.1f", L) + "\" x2=\"" + fmt("%.1f", W - R) + "\" y1=\"" + fmt("%.1f", f.py(y)) +
           "\" y2=\"" + fmt("%.1f", f.py(y)) + "\"/>";
    const std::string label = log_y ? fmt("%.0e", std::pow(10.0, y)) : tick_text(y, f.ystep);
    svg += "<text x=\"" + fmt("%.1f", L - 6) + "\" y=\"" + fmt("%.1f", f.py(y) + 4) + "\" text-anchor=\"end\">" +
           label + "</text>";
  }
  for (double x = std::ceil(f.x0 / f.xstep) * f.xstep; x <= f.x1 + f.xstep * 1e-6; x += f.xstep) {
    svg += "<line x1=\"" + fmt("%.1f", f.px(x)) + "\" x2=\"" + fmt("%.1f", f.px(x)) + "\" y1=\"" + fmt("%.1f", T) +
           "\" y2=\"" + fmt("%.1f", H - B) + "\"/>";
    svg += "<text x=\"" + fmt("%.1f", f.px(x)) + "\" y=\"" + fmt("%.1f", H - B + 16) + "\" text-anchor=\"middle\">" +
           tick_text(x, f.xstep) + "</text>";
  }
  return svg + "</g>\n<text x=\"" + fmt("%.1f", (L + W - R) / 2) + "\" y=\"" + fmt("%.1f", H - B + 32) +
         "\" text-anchor=\"middle\" class=\"axis\">" + html_escape(x_label) + "</text>\n";
}

// One curve: its path (broken at non-finite values), optional markers, its legend entry.
std::string chart_curve(const Frame& f, const Curve& curve, const Series& data, const char* color, double* legend_x) {
  std::string svg, d;
  bool pen = false;
  for (const auto& [x, y] : data) {
    if (!std::isfinite(y)) {
      pen = false;
      continue;
    }
    d += (pen ? " L" : (d.empty() ? "M" : " M")) + fmt("%.1f", f.px(static_cast<double>(x))) + "," +
         fmt("%.1f", f.py(y));
    pen = true;
  }
  if (!d.empty())
    svg += "<path class=\"curve\" data-label=\"" + html_escape(curve.label) + "\" d=\"" + d +
           "\" fill=\"none\" stroke=\"" + color + "\" stroke-width=\"1.6\"/>\n";
  if (curve.markers)
    for (const auto& [x, y] : data)
      if (std::isfinite(y))
        svg += "<circle cx=\"" + fmt("%.1f", f.px(static_cast<double>(x))) + "\" cy=\"" + fmt("%.1f", f.py(y)) +
               "\" r=\"2.5\" fill=\"" + color + "\"/>";
  // legend, left to right under the axis label
  svg += "<rect x=\"" + fmt("%.1f", *legend_x) + "\" y=\"" + fmt("%.1f", H - 13) +
         "\" width=\"12\" height=\"3\" fill=\"" + color + "\"/><text x=\"" + fmt("%.1f", *legend_x + 16) + "\" y=\"" +
         fmt("%.1f", H - 8) + "\" class=\"legend\">" + html_escape(curve.label) + "</text>\n";
  *legend_x += 22 + 6.2 * static_cast<double>(curve.label.size());
  return svg;
}

}  // namespace

std::string svg_chart(const std::string& title, const std::vector<Curve>& curves, const std::string& x_label,
                      bool log_y) {
  Frame frame;
  const std::vector<Series> data = chart_data(curves, log_y, &frame);
  std::string svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" width=\"" + fmt("%.0f", W) +
                    "\" height=\"" + fmt("%.0f", H) + "\" viewBox=\"0 0 " + fmt("%.0f", W) + " " + fmt("%.0f", H) +
                    "\" role=\"img\" aria-label=\"" + html_escape(title) + "\">\n";
  svg += "<text x=\"" + fmt("%.0f", L) + "\" y=\"18\" class=\"title\">" + html_escape(title) + "</text>\n";
  if (frame.empty())
    return svg + "<text x=\"" + fmt("%.0f", W / 2) + "\" y=\"" + fmt("%.0f", H / 2) +
           "\" text-anchor=\"middle\" class=\"empty\">no data yet</text>\n</svg>\n";
  frame.settle();
  svg += chart_grid(frame, x_label, log_y);
  int next = 0;
  double legend_x = L;
  for (size_t i = 0; i < curves.size(); ++i) {
    const int ci = curves[i].color >= 0 ? curves[i].color : next++;
    svg += chart_curve(frame, curves[i], data[i], kPalette[ci % kColors], &legend_x);
  }
  return svg + "</svg>\n";
}

std::string svg_stacked_bar(const std::string& title, const std::vector<std::pair<std::string, double>>& parts,
                            const std::string& unit) {
  double total = 0;
  for (const auto& p : parts) total += std::max(0.0, p.second);
  if (!(total > 0)) return "";
  const double W = 840, L = 10, bar_w = W - 2 * L, y = 28, h = 26;
  std::string svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart stacked\" width=\"" + fmt("%.0f", W) +
                    "\" height=\"96\">\n<text x=\"" + fmt("%.0f", L) + "\" y=\"18\" class=\"title\">" +
                    html_escape(title) + " (" + fmt("%.1f", total) + " " + html_escape(unit) + ")</text>\n";
  double x = L, legend_x = L;
  for (size_t i = 0; i < parts.size(); ++i) {
    const double v = std::max(0.0, parts[i].second), w = bar_w * v / total, share = 100 * v / total;
    const char* color = kPalette[i % kColors];
    const std::string tip = parts[i].first + ": " + fmt("%.2f", v) + " " + unit + " (" + fmt("%.1f", share) + "%)";
    svg += "<rect class=\"part\" data-label=\"" + html_escape(parts[i].first) + "\" x=\"" + fmt("%.1f", x) + "\" y=\"" +
           fmt("%.0f", y) + "\" width=\"" + fmt("%.1f", w) + "\" height=\"" + fmt("%.0f", h) + "\" fill=\"" + color +
           "\"><title>" + html_escape(tip) + "</title></rect>\n";
    if (w > 44)
      svg += "<text x=\"" + fmt("%.1f", x + w / 2) + "\" y=\"" + fmt("%.0f", y + 17) +
             "\" text-anchor=\"middle\" style=\"fill:#fff\">" + fmt("%.0f", share) + "%</text>\n";
    svg += "<rect x=\"" + fmt("%.1f", legend_x) + "\" y=\"70\" width=\"10\" height=\"10\" fill=\"" + color +
           "\"/><text x=\"" + fmt("%.1f", legend_x + 14) + "\" y=\"79\">" + html_escape(parts[i].first) + " " +
           fmt("%.1f", share) + "%</text>\n";
    legend_x += 16 + 6.2 * static_cast<double>(parts[i].first.size() + 7);
    x += w;
  }
  return svg + "</svg>\n";
}

namespace {

const char* kStyle = R"(<style>
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px;color:#222;max-width:1200px}
h1{font-size:22px;margin:0 0 4px} h2{font-size:17px;margin:26px 0 8px;border-bottom:1px solid #ddd}
.sub{color:#666} table{border-collapse:collapse} td,th{padding:3px 12px 3px 0;text-align:left;vertical-align:top}
th{border-bottom:1px solid #ccc} td.num{text-align:right;font-variant-numeric:tabular-nums}
pre{background:#f6f6f6;padding:10px;overflow:auto;font-size:12px;max-height:520px}
.charts{display:flex;flex-wrap:wrap;gap:16px} svg.chart{background:#fff;border:1px solid #e3e3e3}
svg .title{font-weight:600;font-size:13px} svg text{font-size:11px;fill:#444}
svg .grid line{stroke:#eee} svg .empty{fill:#999;font-size:14px}
.status-running{color:#b36b00} .status-finished{color:#19692c} .status-failed,.status-stopped{color:#b00020}
</style>
)";

std::string now_text() {
  const std::time_t t = std::time(nullptr);
  char buf[40];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", std::localtime(&t));
  return buf;
}

bool is_loss_key(const std::string& k) { return k.find("loss") != std::string::npos; }

// metric | final | best (epoch) rows for val/ and train_eval/ keys.
std::string metrics_table(const History& h) {
  std::string t =
      "<table class=\"metrics\"><tr><th>metric</th><th>final</th><th>best</th><th>best at epoch</th></tr>\n";
  for (const auto& k : h.eval_keys()) {
    const auto last = h.last(k);
    const auto best = h.best(k);
    t += "<tr><td>" + html_escape(k) + "</td><td class=\"num\">" + (last ? short_number(*last) : "") +
         "</td><td class=\"num\">" + (best ? short_number(best->first) : "") + "</td><td class=\"num\">" +
         (best ? std::to_string(best->second) : "") + "</td></tr>\n";
  }
  return t + "</table>\n";
}

}  // namespace

std::string report_html(const ReportInfo& info, const History& h) {
  std::string html = "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n";
  if (info.refresh_seconds > 0)
    html += "<meta http-equiv=\"refresh\" content=\"" + std::to_string(info.refresh_seconds) + "\">\n";
  html += "<title>" + html_escape(info.title) + " - runner report</title>\n" + kStyle + "</head><body>\n";
  html += "<h1>" + html_escape(info.title) + "</h1>\n<p class=\"sub\"><span class=\"status-" + info.status + "\">" +
          info.status + "</span> &middot; updated " + now_text() + " &middot; " + html_escape(info.run_dir) +
          (info.refresh_seconds > 0 ? " &middot; this page reloads every " + std::to_string(info.refresh_seconds) + " s"
                                    : std::string()) +
          "</p>\n";
  html += "<h2>Metrics</h2>\n" + metrics_table(h);
  html += "<h2>Timings</h2>\n<table class=\"facts\">\n";
  for (const auto& [k, v] : info.facts)
    html += "<tr><td>" + html_escape(k) + "</td><td>" + html_escape(v) + "</td></tr>\n";
  html += "</table>\n" + svg_stacked_bar("Training loop time by part", info.step_parts, "s");
  html += "<h2>Curves</h2>\n<div class=\"charts\">\n";

  std::vector<Curve> loss, scores, other;
  const Series batch = h.series("train/batch_loss");
  if (!batch.empty()) {
    loss.push_back(Curve{"train/batch_loss", batch, false, 7});
    loss.push_back(Curve{"train/batch_loss (smoothed)", smooth(batch, std::min(1.0, 25.0 / batch.size())), false, 0});
  }
  int color = 1;
  for (const auto& k : h.eval_keys()) {
    (is_loss_key(k) ? loss : scores).push_back(Curve{k, h.series(k), true, color++});
  }
  for (const auto& k : h.keys())
    if (!is_eval_key(k) && k != "train/batch_loss" && k != "lr") other.push_back(Curve{k, h.series(k), false, -1});
  html += svg_chart("Loss", loss, "iteration");
  html += svg_chart("Validation metrics", scores, "iteration");
  html += svg_chart("Learning rate", {Curve{"lr", h.series("lr"), false, 4}}, "iteration");
  html += svg_chart("Throughput (samples/s)", {Curve{"samples/s", info.images_per_s, false, 2}}, "iteration");
  if (!other.empty()) html += svg_chart("Logged by handlers", other, "iteration");
  html += "</div>\n<h2>Config</h2>\n<pre class=\"config\">" + html_escape(info.config_yaml) + "</pre>\n";
  html += "<h2>Model</h2>\n<pre class=\"model\">" + html_escape(info.model_summary) + "</pre>\n</body></html>\n";
  return html;
}

std::string compare_html(const std::vector<ComparedRun>& runs,
                         const std::vector<std::pair<std::string, std::vector<std::string>>>& differing,
                         const std::vector<std::pair<std::string, std::vector<std::string>>>& metrics_rows) {
  std::string html =
      "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<title>runner compare</title>\n";
  html += std::string(kStyle) + "</head><body>\n<h1>Comparison of " + std::to_string(runs.size()) + " runs</h1>\n";
  html += "<p class=\"sub\">written " + now_text() + "</p>\n";
  auto table = [&](const std::vector<std::pair<std::string, std::vector<std::string>>>& rows, const char* first) {
    std::string t = "<table><tr><th>" + std::string(first) + "</th>";
    for (size_t i = 0; i < runs.size(); ++i)
      t += "<th>#" + std::to_string(i + 1) + " " + html_escape(runs[i].name) + "</th>";
    t += "</tr>\n";
    for (const auto& [k, vals] : rows) {
      t += "<tr><td>" + html_escape(k) + "</td>";
      for (const auto& v : vals) t += "<td>" + html_escape(v) + "</td>";
      t += "</tr>\n";
    }
    return t + "</table>\n";
  };
  html += "<h2>Config keys that differ</h2>\n";
  html += differing.empty() ? std::string("<p>none: the configs are identical</p>\n") : table(differing, "key");
  html += "<h2>Metrics</h2>\n" + table(metrics_rows, "metric");
  html += "<h2>Curves</h2>\n<div class=\"charts\">\n";
  std::vector<std::string> keys;  // val/ and train_eval/ keys of any run, first seen first
  for (const auto& r : runs)
    for (const auto& k : r.history.eval_keys())
      if (std::find(keys.begin(), keys.end(), k) == keys.end()) keys.push_back(k);
  std::vector<Curve> batch;
  for (size_t i = 0; i < runs.size(); ++i) {
    const Series s = runs[i].history.series("train/batch_loss");
    batch.push_back(Curve{"#" + std::to_string(i + 1), smooth(s, std::min(1.0, s.empty() ? 1.0 : 25.0 / s.size())),
                          false, static_cast<int>(i)});
  }
  html += svg_chart("train/batch_loss (smoothed)", batch, "iteration");
  for (const auto& k : keys) {
    std::vector<Curve> cs;
    for (size_t i = 0; i < runs.size(); ++i)
      cs.push_back(Curve{"#" + std::to_string(i + 1), runs[i].history.series(k), true, static_cast<int>(i)});
    html += svg_chart(k, cs, "iteration");
  }
  std::vector<Curve> lr;
  for (size_t i = 0; i < runs.size(); ++i)
    lr.push_back(Curve{"#" + std::to_string(i + 1), runs[i].history.series("lr"), false, static_cast<int>(i)});
  html += svg_chart("lr", lr, "iteration");
  return html + "</div>\n</body></html>\n";
}

}  // namespace runner::tracking
