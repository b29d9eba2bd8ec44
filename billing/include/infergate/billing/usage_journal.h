// The local usage journal: an append-only log of framed, checksummed usage records, made
// durable with group commit (one write and one fdatasync for every record queued meanwhile)
// before a request's final bytes are sent. A ledger writer later moves records into Postgres
// and advances a persisted checkpoint; segments wholly before the checkpoint are deleted.
//
// On disk: DIR/journal-<16-digit sequence>.log segments of frames
//   [u32 little-endian payload length][u32 little-endian CRC-32 of payload][payload]
// and DIR/checkpoint ("<segment> <offset>\n", replaced atomically). Opening the journal scans
// the last segment and cuts a torn tail (a frame that was being written when the process died:
// it was never acknowledged). The segment being written is zero-filled ahead of its data in 1 MiB
// steps, so that a commit's fdatasync writes data only (its file size is unchanged); a zero frame
// header marks the end of the data, and a segment is cut back to its data when it is finished
// or closed. Thread-safe.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <cstdlib>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "infergate/billing/usage_record.h"

namespace infergate::infra {
class Histogram;
}

namespace infergate::billing {

struct JournalPosition {
  std::uint64_t segment = 0;
  std::uint64_t offset = 0;
  bool operator==(const JournalPosition&) const = default;
  bool operator<(const JournalPosition& o) const {
    return segment < o.segment || (segment == o.segment && offset < o.offset);
  }
};

class JournalError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class UsageJournal {
 public:
  struct Options {
    std::string dir;
    std::uint64_t segment_bytes = 64ull << 20;  // rotate after this many bytes
    bool fsync = true;  // false only for tests that do not exercise durability
    // Commits go to the device directly (O_DIRECT: whole 4 KiB blocks, the last one's earlier
    // bytes kept in memory), bypassing the page cache's writeback, which makes a commit's
    // fdatasync return sooner. Where the file system refuses O_DIRECT (tmpfs), or with fsync
    // off, writes go through the page cache as before.
    bool direct_io = true;
    // Where set, each commit's duration (write and fdatasync, seconds) and record count.
    infra::Histogram* commit_seconds = nullptr;
    infra::Histogram* commit_records = nullptr;
    // How often an advancing checkpoint is written to disk (see commit_checkpoint).
    std::chrono::milliseconds checkpoint_interval{1000};
  };

  // Opens (creating the directory) and recovers. Throws JournalError.
  explicit UsageJournal(Options options);
  ~UsageJournal();
  UsageJournal(const UsageJournal&) = delete;
  UsageJournal& operator=(const UsageJournal&) = delete;

  // Queues a record; `durable` runs on the journal's thread once it is on disk (error empty)
  // or could not be written (error set: the caller must not acknowledge the request).
  void append(const UsageRecord& record, std::function<void(std::error_code)> durable);
  // Blocking convenience: returns once durable, throws JournalError otherwise.
  void append_sync(const UsageRecord& record);
  // Returns once every record appended before the call is durable (or failed) and its callback
  // has run.
  void flush();

  struct Batch {
    std::vector<UsageRecord> records;
    JournalPosition end;  // position after the last record returned
  };
  // Durable records from `from` on, at most `max_records`.
  Batch read(JournalPosition from, std::size_t max_records) const;

  JournalPosition checkpoint() const;
  // Records `pos` as what is safely in Postgres and deletes the segments before it. The file is
  // rewritten (write, fsync, rename, fsync of the directory: device flushes that a request's
  // commit waits behind) at most once per checkpoint_interval, at once when the checkpoint
  // enters a later segment (before its predecessors are deleted), and when the journal closes.
  // After a crash the ledger replays from the last one written; its unique key drops the
  // records it already has. Called from one thread at a time (the ledger writer's).
  void commit_checkpoint(JournalPosition pos);
  // The durable end of the journal.
  JournalPosition end() const;
  // Bytes after the checkpoint (the backlog not yet in Postgres).
  std::uint64_t backlog_bytes() const;
  std::uint64_t fsync_count() const {
    std::lock_guard lock(mu_);
    return fsyncs_;
  }
  std::uint64_t torn_bytes_dropped() const { return torn_dropped_; }
  // Whether commits to the current segment bypass the page cache (Options::direct_io).
  bool writes_direct() const { return direct_.load(std::memory_order_relaxed); }

 private:
  struct Pending {
    std::string frame;
    std::function<void(std::error_code)> durable;
  };
  std::string segment_path(std::uint64_t seq) const;
  std::vector<std::uint64_t> list_segments() const;
  void recover();
  void open_segment(std::uint64_t seq);
  void writer_loop();
  void write_checkpoint(JournalPosition pos);

  Options opt_;
  mutable std::mutex mu_;  // queue, end, checkpoint
  std::condition_variable cv_;
  std::deque<Pending> queue_;
  bool stopping_ = false;
  bool failed_ = false;  // a write failed and could not be undone
  int fd_ = -1;  // current segment (writer thread only, after construction)
  int dfd_ = -1;  // the same file opened with O_DIRECT, or -1 (writes go through fd_)
  std::atomic<bool> direct_{false};
  std::string tail_;  // with dfd_: the bytes of the data's last, partial 4 KiB block
  struct FreeDeleter {
    void operator()(char* p) const { std::free(p); }
  };
  std::unique_ptr<char, FreeDeleter> block_buf_;  // 4 KiB-aligned staging for direct writes
  std::size_t block_buf_size_ = 0;
  std::error_code write_direct(std::uint64_t offset, const std::string& data);
  // The current segment's latest committed bytes, [recent_base_, end_.offset), at most a few
  // MiB: the ledger writer reads what was just committed from here instead of the file (which,
  // written with O_DIRECT, is not in the page cache). Under a mutex of their own, so trimming
  // them never holds up append().
  mutable std::mutex recent_mu_;
  std::string recent_;
  std::uint64_t recent_segment_ = 0, recent_base_ = 0;
  // Frames from `pos` in the recent bytes; false (nothing read) when they do not hold `pos`.
  bool read_recent(JournalPosition pos, std::size_t max_records, Batch& out) const;
  std::uint64_t allocated_ = 0;  // bytes of the current segment's file: data, then zeros ahead
  int lock_fd_ = -1;  // flock held for the journal's lifetime
  JournalPosition end_;
  JournalPosition checkpoint_;
  JournalPosition persisted_;  // the checkpoint on disk (commit_checkpoint's thread)
  // When this process last wrote the checkpoint file (none yet: the next commit writes it). Not a
  // zero time point: the steady clock starts near zero at boot, so "long ago" would be untrue for
  // the first checkpoint_interval after a machine starts.
  std::optional<std::chrono::steady_clock::time_point> persisted_at_;
  std::uint64_t fsyncs_ = 0;
  std::uint64_t torn_dropped_ = 0;
  std::thread writer_;
};

}  // namespace infergate::billing
