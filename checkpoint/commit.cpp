#include "checkpoint/commit.h"

#include <chrono>
#include <ctime>
#include <filesystem>
#include <system_error>
#include <thread>
#include <vector>

#include "checkpoint/build_info.h"
#include "checkpoint/checkpoint_dir.h"
#include "checkpoint/durable_io.h"
#include "checkpoint/failpoint.h"
#include "checkpoint/format.h"
#include "checkpoint/manifest.h"
#include "core/error.h"

namespace kervan {

namespace fs = std::filesystem;

namespace {

std::string utc_now() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// Waits until every rank from `first` on has left a record or a failure in `tmp`; returns the
// failures' messages.
std::vector<std::string> wait_for_ranks(const std::string& tmp, int world_size, double timeout_s, int first = 0) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
  std::vector<std::string> failures;
  std::error_code ec;
  for (int r = first; r < world_size; ++r) {
    const std::string record = tmp + "/" + rank_record_name(r), failed = tmp + "/" + rank_failure_name(r);
    while (true) {
      if (fs::exists(record, ec)) break;
      if (fs::exists(failed, ec)) {
        failures.push_back("rank " + std::to_string(r) + ": " + read_small_file(failed));
        break;
      }
      if (std::chrono::steady_clock::now() > deadline)
        throw EnvironmentError("wait",
                               "the checkpoint part of rank " + std::to_string(r) + " in '" + tmp + "'",
                               "not written within " + std::to_string(static_cast<int>(timeout_s)) +
                                   " s (parallel.collective_timeout_s)");
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
  return failures;
}

}  // namespace

namespace {

void commit(const std::string& dir, int64_t step, const CommitOptions& options,
            const std::map<std::string, StateValue>& values) {
  const std::string final_folder = step_folder(dir, step), tmp = final_folder + kTmpSuffix;
  const std::vector<std::string> failures = wait_for_ranks(tmp, options.world_size, options.timeout_s);
  if (!failures.empty()) {
    std::string detail;
    for (const std::string& f : failures) detail += (detail.empty() ? "" : "; ") + f;
    throw EnvironmentError("save", "checkpoint " + final_folder, detail);
  }

  Manifest m;
  m.format_version = kCheckpointFormatVersion;
  m.step = step;
  m.kervan_version = kervan_version();
  m.git_commit = kervan_git_commit();
  m.created = utc_now();
  m.values = values;
  for (int r = 0; r < options.world_size; ++r) {
    const std::string path = tmp + "/" + rank_record_name(r);
    RankRecord rec = rank_record_from_json(read_small_file(path), path);
    if (r == 0) {
      m.layout = rec.layout;
      m.layout.rank = m.layout.dp_rank = m.layout.tp_rank = 0;
    }
    if (rec.file) m.files.push_back(*rec.file);
    for (SavedTensor& t : rec.tensors) m.tensors.push_back(std::move(t));
  }
  failpoint("ckpt_before_manifest", step);
  write_durably(tmp + "/" + kManifestFile, manifest_to_json(m));
  // The records are in the manifest now (one left behind would be harmless).
  std::error_code ec;
  for (int r = 0; r < options.world_size; ++r) fs::remove(tmp + "/" + rank_record_name(r), ec);
  sync_path(tmp);
  failpoint("ckpt_before_rename", step);
  // rename() refuses to replace a non-empty folder, so an existing checkpoint is never overwritten.
  rename_durably(tmp, final_folder);
}

}  // namespace

void commit_checkpoint(const std::string& dir, int64_t step, const CommitOptions& options,
                       const std::map<std::string, StateValue>& values) {
  const std::string tmp = step_folder(dir, step) + kTmpSuffix;
  try {
    commit(dir, step, options, values);
  } catch (...) {
    // Every rank is done with step_N.tmp (or the wait for one timed out): what a failed save wrote
    // goes, so a run that goes on (checkpoint.on_failure = "continue") leaves no partial folder.
    std::error_code ec;
    fs::remove_all(tmp, ec);
    throw;
  }
  failpoint("ckpt_before_latest", step);
  write_latest(dir, step);
  for (int64_t old : steps_to_delete(committed_steps(dir), options.keep_last, options.keep_every))
    if (old != step) delete_checkpoint(dir, old);
}

void abandon_checkpoint(const std::string& dir, int64_t step, const CommitOptions& options) noexcept {
  const std::string tmp = step_folder(dir, step) + kTmpSuffix;
  try {
    wait_for_ranks(tmp, options.world_size, options.timeout_s, /*first=*/1);
  } catch (...) {  // a rank that never finished: its part goes too (the next start-up clears a late one)
  }
  std::error_code ec;
  fs::remove_all(tmp, ec);
}

}  // namespace kervan
