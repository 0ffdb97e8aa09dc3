#pragma once
// The run folder's report.html and `runner compare`'s compare.html: self-contained
// pages (no script, no network) with curves drawn as inline SVG.
#include <string>
#include <vector>

#include "tracking/history.hpp"

namespace runner::tracking {

struct Curve {
  std::string label;
  Series points;         ///< (iteration, value)
  bool markers = false;  ///< draw a dot per point (validation curves have few)
  int color = -1;        ///< palette index; -1: next
};

/// One line chart as an <svg> element: nice-number axes, a polyline <path> per curve,
/// a legend. Long curves are reduced to at most ~1,000 points (bucket means).
std::string svg_chart(const std::string& title, const std::vector<Curve>& curves, const std::string& x_label,
                      bool log_y = false);

/// One horizontal bar split into `parts` (label, value), each segment sized by its share
/// and labelled with it; a legend below. Empty when the values sum to 0.
std::string svg_stacked_bar(const std::string& title, const std::vector<std::pair<std::string, double>>& parts,
                            const std::string& unit);

std::string html_escape(const std::string& s);

struct ReportInfo {
  std::string title;  ///< run folder name
  std::string run_dir;
  std::string status;  ///< running | finished | failed | stopped
  std::string config_yaml;
  std::string model_summary;
  std::vector<std::pair<std::string, std::string>> facts;  ///< timings etc., shown as a table
  Series images_per_s;                                     ///< throughput over each log interval
  std::vector<std::pair<std::string, double>> step_parts;  ///< training loop seconds by part
  int refresh_seconds = 0;                                 ///< >0 while running: the page reloads itself
};

/// report.html of one run.
std::string report_html(const ReportInfo& info, const History& history);

struct ComparedRun {
  std::string name;  ///< label (run folder name)
  History history;
};
/// compare.html: the differing config keys (rows) and the runs' curves overlaid.
std::string compare_html(const std::vector<ComparedRun>& runs,
                         const std::vector<std::pair<std::string, std::vector<std::string>>>& differing,
                         const std::vector<std::pair<std::string, std::vector<std::string>>>& metrics_table);

/// Exponential moving average (weight `alpha` on the new point), as TensorBoard smooths.
Series smooth(const Series& s, double alpha);

}  // namespace runner::tracking
