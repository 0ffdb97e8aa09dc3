#include "logging/reports.hpp"

#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <map>
#include <sstream>

#include "util/parameters.hpp"

namespace runner {

int64_t count_parameters(const torch::nn::Module& m, bool trainable_only) {
  int64_t n = 0;
  for (const auto& p : unique_parameters(m))
    if (!trainable_only || p.requires_grad()) n += p.numel();
  return n;
}

namespace {
std::string with_commas(int64_t v) {
  std::string s = std::to_string(v);
  for (int i = static_cast<int>(s.size()) - 3; i > (s[0] == '-' ? 1 : 0); i -= 3) s.insert(i, ",");
  return s;
}
// "torch::nn::Conv2dImpl" -> "Conv2d", "(anonymous namespace)::BasicBlock" -> "BasicBlock".
std::string short_type(std::string name) {
  if (auto p = name.rfind("::"); p != std::string::npos) name = name.substr(p + 2);
  if (name.size() > 4 && name.compare(name.size() - 4, 4, "Impl") == 0) name.resize(name.size() - 4);
  return name;
}
std::string shape_str(const std::vector<int64_t>& dims) {
  std::string s = "[-1";
  for (size_t i = 1; i < dims.size(); ++i) s += ", " + std::to_string(dims[i]);
  return s + "]";
}
}  // namespace

ModelProbe probe_model(Model& model, const Fields& fields) {
  ModelProbe probe;
  model.set_recorder(
      [&](const std::string& n, const torch::Tensor& t) { probe.traced.emplace_back(n, t.sizes().vec()); });
  const bool was_training = model.is_training();
  model.eval();
  {
    torch::NoGradGuard no_grad;
    const auto params = unique_parameters(model);  // the probe goes where the model is
    const torch::Device device = params.empty() ? torch::Device(torch::kCPU) : params.front().device();
    for (const Field& f : fields) {
      std::vector<int64_t> shape = {2};
      shape.insert(shape.end(), f.shape.begin(), f.shape.end());
      probe.batch.emplace(f.name, torch::zeros(shape, torch::TensorOptions().dtype(f.dtype).device(device)));
    }
    probe.outputs = model.forward_batch(probe.batch);
  }
  model.train(was_training);
  model.set_recorder(nullptr);
  return probe;
}

namespace {
// "[-1, 10]" for the one "logits" output, else "logits [-1, 10], aux [-1, 4]".
std::string outputs_str(const TensorDict& outputs) {
  if (outputs.size() == 1 && outputs.count("logits")) return shape_str(outputs.at("logits").sizes().vec());
  std::string s;
  for (const auto& [k, t] : outputs) s += (s.empty() ? "" : ", ") + k + " " + shape_str(t.sizes().vec());
  return s;
}
}  // namespace

std::string model_summary(Model& model, const std::string& name, const ModelProbe& probe) {
  std::map<std::string, std::shared_ptr<torch::nn::Module>> modules;
  for (const auto& item : model.named_modules("", /*include_self=*/false)) modules[item.key()] = item.value();

  std::ostringstream out;
  char row[256];
  const char* line = "==========================================================================\n";
  out << "Model: " << name << "\n" << line;
  std::snprintf(row, sizeof row, "%-40s %-22s %12s\n", "Layer (type)", "Output Shape", "Param #");
  out << row << line;
  for (const std::string& field : model.inputs()) {
    auto it = probe.batch.find(field);
    if (it == probe.batch.end()) continue;
    std::snprintf(row, sizeof row, "%-40s %-22s %12s\n", field.c_str(), shape_str(it->second.sizes().vec()).c_str(),
                  "0");
    out << row;
  }
  int64_t listed = 0;
  for (const auto& [n, dims] : probe.traced) {
    std::string label = n;
    int64_t params = 0;
    auto it = modules.find(n);
    if (it != modules.end()) {
      label += " (" + short_type(it->second->name()) + ")";
      params = count_parameters(*it->second);
      listed += params;
    }
    std::snprintf(row, sizeof row, "%-40s %-22s %12s\n", label.c_str(), shape_str(dims).c_str(),
                  with_commas(params).c_str());
    out << row;
  }
  if (probe.traced.empty()) {
    std::snprintf(row, sizeof row, "%-40s %-22s %12s\n", "output", outputs_str(probe.outputs).c_str(),
                  with_commas(count_parameters(model)).c_str());
    out << row;
    listed = count_parameters(model);
  }
  int64_t buffers = 0;
  for (const auto& b : model.buffers()) buffers += b.numel();
  const int64_t total = count_parameters(model), trainable = count_parameters(model, true);
  out << line << "Total params: " << with_commas(total) << "\n"
      << "Trainable params: " << with_commas(trainable) << "\n"
      << "Non-trainable params: " << with_commas(total - trainable) << "\n"
      << "Buffers (e.g. BatchNorm statistics): " << with_commas(buffers) << "\n";
  if (listed != total)
    out << "(layers above hold " << with_commas(listed) << " of the parameters; the rest are in untraced modules)\n";
  out << "Output: " << outputs_str(probe.outputs) << "\n";
  return out.str();
}

std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  const int64_t s = static_cast<int64_t>(std::llround(seconds));
  char buf[32];
  if (s >= 3600)
    std::snprintf(buf, sizeof buf, "%ldh%02ldm", long(s / 3600), long(s % 3600 / 60));
  else if (s >= 60)
    std::snprintf(buf, sizeof buf, "%ldm%02lds", long(s / 60), long(s % 60));
  else
    std::snprintf(buf, sizeof buf, "%lds", long(s));
  return buf;
}

namespace {
// Columns of the terminal on stdout (COLUMNS, else 80 when unknown).
int terminal_columns() {
  struct winsize ws {};
  if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
  if (const char* c = std::getenv("COLUMNS"); c && std::atoi(c) > 0) return std::atoi(c);
  return 80;
}
}  // namespace

// The bar takes what the text leaves of the line (10 to 30 columns); a line that still
// does not fit is cut, so it never wraps (a wrapped line cannot be redrawn in place).
void Progress::bar(int64_t epoch, int64_t max_epochs, int64_t it, int64_t epoch_length, double it_per_s, double eta_s,
                   double loss, double lr) {
  if (!tty_) return;
  char tail[160];
  std::snprintf(tail, sizeof tail, " %ld/%ld %.1f it/s ETA %s loss %.4f lr %.4g", long(it), long(epoch_length),
                it_per_s, format_duration(eta_s).c_str(), loss, lr);
  const std::string head = "epoch " + std::to_string(epoch) + "/" + std::to_string(max_epochs) + " [";
  const int columns = terminal_columns() - 1;  // the last column would wrap on some terminals
  const int room = columns - static_cast<int>(head.size() + 1 + std::strlen(tail));
  const int width = std::max(10, std::min(30, room));
  const int filled = epoch_length > 0 ? static_cast<int>(width * it / epoch_length) : 0;
  std::string bar(static_cast<size_t>(filled), '#');
  bar.resize(static_cast<size_t>(width), '.');
  std::string line = head + bar + "]" + tail;
  if (static_cast<int>(line.size()) > columns) line.resize(static_cast<size_t>(std::max(columns, 0)));
  std::cout << "\r\033[K" << line << std::flush;
  drawn_ = true;
}

void Progress::clear() {
  if (tty_ && drawn_) std::cout << "\r\033[K" << std::flush;
  drawn_ = false;
}

}  // namespace runner
