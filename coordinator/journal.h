#pragma once
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "proto/journal.pb.h"

namespace kervan {

// The coordinator's journal: every change of its durable state is one record appended to a
// file, and a restarted coordinator replays the file to get that state back.
//
//   file    := "KVJRNL01" record*
//   record  := length:u32le checksum:u64le payload[length]
//   payload := a serialized JournalRecord (proto/journal.proto); the first one is its header
//   checksum = XXH3-64 of (length bytes, payload)
//
// Appends are group-committed: a background thread writes whatever is queued with one write()
// and one fdatasync(), then tells each record's caller that it is durable, so a reply goes out
// only for a change that is on disk, and no caller's thread waits for the disk (nor holds a
// lock meanwhile). A crash can tear only the last record: replay drops it with a warning naming
// its offset and truncates the file there. A damaged record followed by intact data is not a
// tear, and the journal is refused.
class Journal {
 public:
  using Record = coordinator::v1::JournalRecord;

  // Opens `path`, creating it (with `header` as its first record) when it does not exist. An
  // existing journal must carry the same job id and corpus fingerprint, else a UserError naming
  // the file and both, ending with `advice` (what the user can do about it); its records after
  // the header go to `replay`, in order. Two coordinators cannot share a journal (an exclusive
  // lock; the second is refused).
  Journal(std::string path, const coordinator::v1::JournalHeader& header,
          const std::function<void(const Record&)>& replay, const std::string& advice);
  ~Journal();  // writes what is queued first
  Journal(const Journal&) = delete;
  Journal& operator=(const Journal&) = delete;

  // Queues `record`; `on_durable` runs on the journal's thread once the record is written and
  // fsync'd, in the order of append(). Callers that must keep records in the order of their
  // state changes call append() under the lock that orders those changes. If the disk refuses a
  // write the coordinator cannot go on (its state would run ahead of its journal): the failure
  // is logged, naming the file, and the process exits with code 4.
  void append(const Record& record, std::function<void()> on_durable);

  const std::string& path() const { return path_; }
  // Whether this Journal created the file (it did not exist before): a coordinator that then
  // fails to start removes it, so that a failed first start leaves nothing behind.
  bool created() const { return created_; }
  uint64_t replayed_records() const { return replayed_; }

  static constexpr char kMagic[8] = {'K', 'V', 'J', 'R', 'N', 'L', '0', '1'};

 private:
  struct Pending {
    std::string bytes;
    std::function<void()> on_durable;
  };
  void replay_existing(const coordinator::v1::JournalHeader& header,
                       const std::function<void(const Record&)>& replay, const std::string& advice);
  void write_loop();
  [[noreturn]] void fail(const std::string& what);

  std::string path_;
  int fd_ = -1;
  bool created_ = false;
  uint64_t replayed_ = 0;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Pending> queue_;
  bool stopping_ = false;
  std::thread writer_;
};

// One framed record (what append() writes).
std::string frame_journal_record(const Journal::Record& record);

}  // namespace kervan
