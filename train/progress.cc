#include "train/progress.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace loom {

std::string FormatDuration(double seconds) {
  const int64_t s = int64_t(std::max(0.0, seconds) + 0.5);
  if (s >= 3600) return absl::StrFormat("%02d:%02d:%02d", s / 3600, s / 60 % 60, s % 60);
  return absl::StrFormat("%02d:%02d", s / 60, s % 60);
}

ProgressBar::ProgressBar(int64_t total_steps, FILE* out, bool interactive)
    : total_(std::max<int64_t>(1, total_steps)), out_(out), interactive_(interactive) {}

ProgressBar::ProgressBar(int64_t total_steps, FILE* out)
    : ProgressBar(total_steps, out, isatty(fileno(out)) != 0) {}

std::string ProgressBar::Bar(double fraction, int width) {
  static const char* kEighths[] = {"", "▏", "▎", "▍", "▌", "▋", "▊", "▉"};
  const int eighths = int(std::clamp(fraction, 0.0, 1.0) * width * 8);
  std::string bar;
  for (int i = 0; i < eighths / 8; ++i) bar += "█";
  int cells = eighths / 8;
  if (cells < width && eighths % 8 != 0) {
    bar += kEighths[eighths % 8];
    ++cells;
  }
  bar.append(size_t(width - cells), ' ');
  return bar;
}

std::string ProgressBar::Line(int64_t step, const std::string& text) const {
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const double fraction = double(step) / double(total_);
  const double remaining = step > 0 ? elapsed * double(total_ - step) / double(step) : 0;
  return absl::StrFormat("%3d%% |%s| %d/%d [%s<%s] %s", int(fraction * 100), Bar(fraction, 20),
                         step, total_, FormatDuration(elapsed), FormatDuration(remaining), text);
}

void ProgressBar::Update(int64_t step, const std::string& text) {
  last_ = Line(step, text);
  if (interactive_) {
    std::fprintf(out_, "\r\033[2K%s", last_.c_str());
    drawn_ = true;
  } else {
    std::fprintf(out_, "%s\n", last_.c_str());
  }
  std::fflush(out_);
}

void ProgressBar::Print(const std::string& line) {
  if (interactive_ && drawn_) {
    std::fprintf(out_, "\r\033[2K%s\n%s", line.c_str(), last_.c_str());
  } else {
    std::fprintf(out_, "%s\n", line.c_str());
  }
  std::fflush(out_);
}

void ProgressBar::Finish() {
  if (interactive_ && drawn_) std::fprintf(out_, "\n");
  drawn_ = false;
  std::fflush(out_);
}

MetricsLog::~MetricsLog() {
  if (file_ != nullptr) std::fclose(file_);
}

absl::Status MetricsLog::Open(const std::string& path) {
  if (file_ != nullptr) std::fclose(file_);
  file_ = std::fopen(path.c_str(), "w");
  if (file_ == nullptr) return absl::InternalError(absl::StrCat(path, ": cannot open for writing"));
  return absl::OkStatus();
}

void MetricsLog::Write(const nlohmann::json& record) {
  if (file_ == nullptr) return;
  const std::string line = record.dump();
  std::fprintf(file_, "%s\n", line.c_str());
  std::fflush(file_);
}

}  // namespace loom
