// Training progress for people and for tools: a one-line progress bar on a
// terminal (plain log lines otherwise) and a JSONL metrics file.
//
//   ProgressBar bar(total_steps, stderr);
//   bar.Update(step, "loss 2.31 | lr 3.0e-04 | grad 0.87 | 41k tok/s");
//   MetricsLog log;  LOOM_RETURN_IF_ERROR(log.Open(output_dir + "/metrics.jsonl"));
//   log.Write({{"step", step}, {"loss", loss}});
#ifndef LOOM_TRAIN_PROGRESS_H_
#define LOOM_TRAIN_PROGRESS_H_

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

#include "absl/status/status.h"
#include "nlohmann/json.hpp"

namespace loom {

class ProgressBar {
 public:
  // `interactive`: redraw one line with '\r' (a terminal); otherwise print a
  // line per Update.
  ProgressBar(int64_t total_steps, FILE* out, bool interactive);
  ProgressBar(int64_t total_steps, FILE* out);  // interactive iff `out` is a tty

  // "  37% |███████▍            | 37/100 [00:12<00:21] <text>"
  void Update(int64_t step, const std::string& text);
  // Prints a line above the bar (evaluation results, saves).
  void Print(const std::string& line);
  void Finish();

  // The bar alone, for tests: width cells, eighths of a cell resolution.
  static std::string Bar(double fraction, int width);

 private:
  std::string Line(int64_t step, const std::string& text) const;

  int64_t total_;
  FILE* out_;
  bool interactive_;
  bool drawn_ = false;
  std::string last_;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
};

// Appends one JSON object per line; flushed after each line so a crash keeps
// every finished step.
class MetricsLog {
 public:
  MetricsLog() = default;
  MetricsLog(const MetricsLog&) = delete;
  MetricsLog& operator=(const MetricsLog&) = delete;
  ~MetricsLog();
  // Truncates `path`.
  absl::Status Open(const std::string& path);
  void Write(const nlohmann::json& record);

 private:
  FILE* file_ = nullptr;
};

// "01:02:03" or "02:03".
std::string FormatDuration(double seconds);

}  // namespace loom

#endif  // LOOM_TRAIN_PROGRESS_H_
