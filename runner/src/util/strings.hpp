#pragma once
// String helpers for messages: "did you mean" suggestions, joined lists, durations, and
// numbers as text.
#include <string>
#include <vector>

namespace runner {

/// Levenshtein distance.
size_t edit_distance(const std::string& a, const std::string& b);

/// The candidate `word` most plausibly meant, else "": the name the same thing has elsewhere
/// (output_dir -> output_path, gpu -> cuda, fp32 -> none, learning_rate -> lr, loss ->
/// criterion), else the closest by edit distance if near enough, else one that contains it or
/// that it contains.
std::string closest_match(const std::string& word, const std::vector<std::string>& candidates);

/// "; did you mean 'x'?" or "".
std::string did_you_mean(const std::string& word, const std::vector<std::string>& candidates);

/// The text up to its first newline (c10::Error messages carry a backtrace after it).
std::string first_line(std::string text);

std::string join(const std::vector<std::string>& items, const std::string& sep = ", ");

/// A duration such as "90s", "45m", "4h", "1d12h" or "1.5h" (numbers each followed by
/// s, m, h or d) in seconds. False when `text` is not one.
bool parse_duration(const std::string& text, double* seconds);

/// The shortest text that reads back as exactly `v` (std::to_chars: "0.1", "1", "1e-05",
/// "1.2345678901234567e+300"); non-finite values as "nan", "inf", "-inf".
std::string shortest(double v);

}  // namespace runner
