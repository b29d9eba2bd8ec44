#include "infergate/billing/usage_journal.h"

#include "infergate/billing/crc32.h"
#include "infergate/infra/metrics.h"

#include <pthread.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>

namespace infergate::billing {
namespace fs = std::filesystem;
namespace {

constexpr std::size_t kHeader = 8;
constexpr std::uint32_t kMaxPayload = 1u << 20;  // a usage record is far smaller
// A segment is zero-filled this far ahead of its data: overwriting bytes the file already has
// leaves its size alone, so fdatasync flushes the data only, without a second write of the
// inode per commit. A zero frame header marks the end of a segment's data.
constexpr std::uint64_t kPreallocChunk = 1u << 20;
// Direct writes cover whole blocks of this size, at offsets and addresses aligned to it (a
// multiple of every logical block size in use).
constexpr std::uint64_t kBlock = 4096;
// The latest committed bytes kept in memory for the ledger writer (UsageJournal::recent_), and
// the most read() copies out of them at a time.
constexpr std::size_t kRecentMax = 4u << 20;
constexpr std::size_t kRecentCopy = 256u << 10;
constexpr std::uint64_t block_floor(std::uint64_t v) { return v & ~(kBlock - 1); }
constexpr std::uint64_t block_ceil(std::uint64_t v) { return block_floor(v + kBlock - 1); }


void put_u32(std::string& out, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) out += static_cast<char>((v >> (8 * i)) & 0xff);
}

std::uint32_t get_u32(const char* p) {
  std::uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw JournalError("cannot read " + path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void fsync_dir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

// Writes `n` bytes at `offset`, taking them from `data` (`period` bytes long, repeated).
std::error_code write_at(int fd, const char* data, std::uint64_t n, std::uint64_t offset, std::size_t period) {
  std::uint64_t done = 0;
  while (done < n) {
    const std::size_t from = static_cast<std::size_t>(done % period);
    const std::size_t len = static_cast<std::size_t>(std::min<std::uint64_t>(n - done, period - from));
    const ssize_t w = ::pwrite(fd, data + from, len, static_cast<off_t>(offset + done));
    if (w < 0) {
      if (errno == EINTR) continue;
      return std::error_code(errno, std::generic_category());
    }
    done += static_cast<std::uint64_t>(w);
  }
  return {};
}

// Scans frames in `data` from 0; returns the offset after the last valid frame.
std::size_t valid_prefix(const std::string& data) {
  std::size_t off = 0;
  while (off + kHeader <= data.size()) {
    const std::uint32_t len = get_u32(data.data() + off);
    const std::uint32_t crc = get_u32(data.data() + off + 4);
    if (len == 0 || len > kMaxPayload || off + kHeader + len > data.size()) break;
    if (crc32(std::string_view(data.data() + off + kHeader, len)) != crc) break;
    off += kHeader + len;
  }
  return off;
}

// Reads a segment from a file position onwards, in windows, so a batch costs its own bytes and
// not the whole segment's (re-reading the segment per batch made draining a backlog quadratic).
// A missing segment reads as empty.
class SegmentWindow {
 public:
  explicit SegmentWindow(const std::string& path) : path_(path) {
    fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0 && errno != ENOENT)
      throw JournalError("cannot read " + path + ": " + std::strerror(errno));
    struct stat st {};
    if (fd_ >= 0 && ::fstat(fd_, &st) == 0) size_ = static_cast<std::uint64_t>(st.st_size);
  }
  ~SegmentWindow() {
    if (fd_ >= 0) ::close(fd_);
  }
  SegmentWindow(const SegmentWindow&) = delete;
  SegmentWindow& operator=(const SegmentWindow&) = delete;

  std::uint64_t size() const { return size_; }
  void start_at(std::uint64_t offset) {
    base_ = offset;
    buf_.clear();
  }
  // Makes [base, upto) readable (upto <= stop); false if the file is shorter.
  bool cover(std::uint64_t upto, std::uint64_t stop) {
    constexpr std::uint64_t kWindow = 256 * 1024;
    while (base_ + buf_.size() < upto) {
      const std::uint64_t have = base_ + buf_.size();
      const std::uint64_t want = std::min(std::max(upto - have, kWindow), stop - have);
      const std::size_t old = buf_.size();
      buf_.resize(old + want);
      const ssize_t n = fd_ < 0 ? 0 : ::pread(fd_, buf_.data() + old, want, static_cast<off_t>(have));
      if (n < 0 && errno == EINTR) {
        buf_.resize(old);
        continue;
      }
      if (n < 0) throw JournalError("cannot read " + path_ + ": " + std::strerror(errno));
      buf_.resize(old + static_cast<std::size_t>(n));
      if (n == 0) return false;
    }
    return true;
  }
  const char* at(std::uint64_t offset) const { return buf_.data() + (offset - base_); }

 private:
  std::string path_;
  int fd_ = -1;
  std::uint64_t size_ = 0, base_ = 0;
  std::string buf_;
};

}  // namespace

UsageJournal::UsageJournal(Options options) : opt_(std::move(options)) {
  std::error_code ec;
  fs::create_directories(opt_.dir, ec);
  if (ec) throw JournalError("cannot create journal directory " + opt_.dir + ": " + ec.message());
  // One process per journal: two writers would interleave frames and race on the checkpoint.
  const std::string lock_path = opt_.dir + "/lock";
  lock_fd_ = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0640);
  if (lock_fd_ < 0 || ::flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    if (lock_fd_ >= 0) ::close(lock_fd_);
    throw JournalError("the usage journal in " + opt_.dir +
                       " is in use by another process; give each instance its own journal.dir");
  }
  recover();
  persisted_ = checkpoint_;
  writer_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "ig-journal");
    writer_loop();
  });
}

UsageJournal::~UsageJournal() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (writer_.joinable()) writer_.join();
  if (!(checkpoint_ == persisted_)) {
    try {
      write_checkpoint(checkpoint_);
    } catch (const std::exception&) {  // the next start replays from the one on disk
    }
  }
  if (dfd_ >= 0) ::close(dfd_);
  if (fd_ >= 0) {
    // Closed cleanly, the segment ends at its data (opening it again would cut the zeros too).
    if (::ftruncate(fd_, static_cast<off_t>(end_.offset)) == 0 && opt_.fsync) ::fdatasync(fd_);
    ::close(fd_);
  }
  if (lock_fd_ >= 0) ::close(lock_fd_);
}

std::string UsageJournal::segment_path(std::uint64_t seq) const {
  char name[64];
  std::snprintf(name, sizeof name, "journal-%016llu.log", static_cast<unsigned long long>(seq));
  return opt_.dir + "/" + name;
}

std::vector<std::uint64_t> UsageJournal::list_segments() const {
  std::vector<std::uint64_t> out;
  for (const auto& e : fs::directory_iterator(opt_.dir)) {
    const std::string name = e.path().filename().string();
    if (name.size() == 28 && name.rfind("journal-", 0) == 0 && name.substr(24) == ".log")
      out.push_back(std::stoull(name.substr(8, 16)));
  }
  std::sort(out.begin(), out.end());
  return out;
}

void UsageJournal::recover() {
  // The checkpoint: what is already in Postgres.
  const std::string cp = opt_.dir + "/checkpoint";
  if (fs::exists(cp)) {
    unsigned long long seg = 0, off = 0;
    if (std::sscanf(read_all(cp).c_str(), "%llu %llu", &seg, &off) != 2)
      throw JournalError(cp + " is not '<segment> <offset>': fix or remove it (removing replays "
                              "the whole journal, which the ledger deduplicates)");
    checkpoint_ = {seg, off};
  }
  auto segments = list_segments();
  if (segments.empty()) {
    const std::uint64_t first = std::max<std::uint64_t>(1, checkpoint_.segment);
    open_segment(first);
    end_ = {first, 0};
    if (checkpoint_.segment == 0) checkpoint_ = end_;
    return;
  }
  if (checkpoint_.segment == 0) checkpoint_ = {segments.front(), 0};
  // Only the last segment can have a torn tail: earlier ones were complete when rotated.
  const std::uint64_t last = segments.back();
  const std::string path = segment_path(last);
  const std::string data = read_all(path);
  const std::size_t good = valid_prefix(data);
  if (good < data.size()) {
    // What follows the last whole frame: zeros written ahead (nothing lost), or a frame being
    // written when the process died (never acknowledged), perhaps with zeros after it.
    const std::size_t last_byte = data.find_last_not_of('\0');
    torn_dropped_ = last_byte == std::string::npos || last_byte < good ? 0 : last_byte + 1 - good;
    if (::truncate(path.c_str(), static_cast<off_t>(good)) != 0)
      throw JournalError("cannot cut the torn tail of " + path + ": " + std::strerror(errno));
  }
  open_segment(last);
  if (opt_.fsync && good < data.size()) ::fsync(fd_);
  end_ = {last, good};
  allocated_ = good;
  if (dfd_ >= 0) tail_ = data.substr(block_floor(good), good - block_floor(good));
}

// Opens segment `seq` (creating it) and only then lets go of the current one, so a segment that
// cannot be opened leaves the journal writing where it was and a later commit can try again.
void UsageJournal::open_segment(std::uint64_t seq) {
  const std::string path = segment_path(seq);
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0640);
  if (fd < 0) throw JournalError("cannot open " + path + ": " + std::strerror(errno));
  // EINVAL where the file system has no direct I/O (tmpfs): the page cache path then.
  const int dfd = opt_.fsync && opt_.direct_io ? ::open(path.c_str(), O_WRONLY | O_DIRECT | O_CLOEXEC) : -1;
  if (fd_ >= 0) ::close(fd_);
  if (dfd_ >= 0) ::close(dfd_);
  fd_ = fd;
  dfd_ = dfd;
  tail_.clear();
  direct_.store(dfd_ >= 0, std::memory_order_relaxed);
  allocated_ = 0;
  if (opt_.fsync) fsync_dir(opt_.dir);
}

void UsageJournal::append(const UsageRecord& record,
                          std::function<void(std::error_code)> durable) {
  const std::string payload = encode_usage(record);
  std::string frame;
  frame.reserve(kHeader + payload.size());
  put_u32(frame, static_cast<std::uint32_t>(payload.size()));
  put_u32(frame, crc32(payload));
  frame += payload;
  std::error_code refused;
  {
    std::lock_guard lock(mu_);
    if (stopping_) {
      refused = std::make_error_code(std::errc::operation_canceled);
    } else if (failed_) {
      refused = std::make_error_code(std::errc::io_error);
    } else {
      queue_.push_back({std::move(frame), std::move(durable)});
    }
  }
  if (refused) {
    durable(refused);  // outside the lock: the callback may use the journal
    return;
  }
  cv_.notify_one();
}

void UsageJournal::append_sync(const UsageRecord& record) {
  std::promise<std::error_code> done;
  auto fut = done.get_future();
  append(record, [&done](std::error_code ec) { done.set_value(ec); });
  if (auto ec = fut.get()) throw JournalError("journal write failed: " + ec.message());
}

void UsageJournal::flush() {
  std::promise<void> done;
  auto fut = done.get_future();
  {
    std::lock_guard lock(mu_);
    if (stopping_) return;
    // An empty frame: written with the batch it lands in (as nothing), its callback after the
    // callbacks of everything queued before it.
    queue_.push_back({std::string(), [&done](std::error_code) { done.set_value(); }});
  }
  cv_.notify_one();
  fut.wait();
}

// Group commit: everything queued while the previous batch was being synced goes out in one
// write and one fdatasync.
void UsageJournal::writer_loop() {
  for (;;) {
    std::deque<Pending> batch;
    JournalPosition at;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping with nothing left
      batch.swap(queue_);
      at = end_;
    }
    if (at.offset >= opt_.segment_bytes) {  // rotate before writing
      try {
        // The finished segment ends at its data (its reader and the backlog use its size). Each
        // step can be repeated: if one fails, this batch fails and the next one starts over.
        if (::ftruncate(fd_, static_cast<off_t>(at.offset)) != 0 || (opt_.fsync && ::fdatasync(fd_) != 0))
          throw JournalError("cannot cut the zeros after a segment's data: " + std::string(std::strerror(errno)));
        open_segment(at.segment + 1);
        at = {at.segment + 1, 0};
        // The journal's end moves into the new (empty, created durably) segment now, not with
        // its first successful commit: were that commit to fail, the next one must write here
        // rather than rotate again over this segment.
        std::lock_guard lock(mu_);
        end_ = at;
      } catch (const std::exception&) {
        for (auto& p : batch) p.durable(std::make_error_code(std::errc::io_error));
        continue;
      }
    }
    std::string buf;
    for (const auto& p : batch) buf += p.frame;
    std::error_code ec;
    const auto commit_start = std::chrono::steady_clock::now();
    if (dfd_ >= 0) {
      ec = write_direct(at.offset, buf);
    } else {
      // Zeros ahead first (see kPreallocChunk); the fdatasync below makes them and the new size
      // durable with the batch, so commits before the next extension write data only.
      if (opt_.fsync && at.offset + buf.size() > allocated_) {
        const std::uint64_t want = (at.offset + buf.size() + kPreallocChunk) / kPreallocChunk * kPreallocChunk;
        static const std::string zeros(kPreallocChunk, '\0');
        ec = write_at(fd_, zeros.data(), want - allocated_, allocated_, zeros.size());
        if (!ec) allocated_ = want;
      }
      if (!ec) ec = write_at(fd_, buf.data(), buf.size(), at.offset, buf.size());
    }
    if (!ec && opt_.fsync && ::fdatasync(fd_) != 0) ec = std::error_code(errno, std::generic_category());
    if (!ec && opt_.commit_seconds != nullptr)
      opt_.commit_seconds->observe(std::chrono::duration<double>(std::chrono::steady_clock::now() - commit_start).count());
    if (!ec && opt_.commit_records != nullptr) opt_.commit_records->observe(static_cast<double>(batch.size()));
    if (ec) {
      // Cut what may be written, durably: the batch's requests are refused, and their frames,
      // had they reached the disk whole, must not come back as records after a crash (the
      // clients retry, and would be billed twice). If the cut cannot be made durable, refuse
      // every later append instead (requests then fail rather than be metered wrongly).
      if (::ftruncate(fd_, static_cast<off_t>(at.offset)) != 0 || (opt_.fsync && ::fdatasync(fd_) != 0)) {
        std::lock_guard lock(mu_);
        failed_ = true;
      }
      allocated_ = at.offset;
    } else {
      const std::uint64_t end = at.offset + buf.size();
      if (dfd_ >= 0) {  // the new last block's bytes, for the next commit to write again
        tail_.assign(block_buf_.get() + (block_floor(end) - block_floor(at.offset)), end - block_floor(end));
      }
      {
        std::lock_guard lock(recent_mu_);
        if (recent_segment_ != at.segment || recent_base_ + recent_.size() != at.offset) {  // start over
          recent_.clear();
          recent_segment_ = at.segment;
          recent_base_ = at.offset;
        }
        if (recent_.size() + buf.size() > kRecentMax) {  // keep the newer half
          const std::size_t drop = recent_.size() / 2;
          recent_.erase(0, drop);
          recent_base_ += drop;
        }
        recent_ += buf;
      }
      std::lock_guard lock(mu_);
      end_ = {at.segment, end};
      ++fsyncs_;
    }
    for (auto& p : batch) p.durable(ec);
  }
}

// A commit in direct mode: the data's last partial block (kept in tail_) and the new frames,
// zero-padded to whole blocks, in one write at the block's start. Zeros ahead (kPreallocChunk)
// go first, also directly; the fdatasync after makes both durable.
std::error_code UsageJournal::write_direct(std::uint64_t offset, const std::string& data) {
  const auto fail = [](int err) { return std::error_code(err, std::generic_category()); };
  const auto write_all = [this, &fail](const char* p, std::uint64_t n, std::uint64_t at) -> std::error_code {
    std::uint64_t done = 0;
    while (done < n) {
      const ssize_t w = ::pwrite(dfd_, p + done, static_cast<std::size_t>(n - done), static_cast<off_t>(at + done));
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) return fail(errno);
      // A short direct write ends on a block boundary; anything else cannot be continued.
      if (w == 0 || static_cast<std::uint64_t>(w) % kBlock != 0) return fail(EIO);
      done += static_cast<std::uint64_t>(w);
    }
    return {};
  };
  const std::uint64_t start = block_floor(offset);
  if (offset - start != tail_.size()) return fail(EIO);  // tail_ out of step: never expected
  const std::uint64_t len = block_ceil(tail_.size() + data.size());
  const std::uint64_t need = std::max<std::uint64_t>(len, kPreallocChunk);
  if (block_buf_size_ < need) {
    block_buf_.reset(static_cast<char*>(std::aligned_alloc(kBlock, need)));
    if (!block_buf_) {
      block_buf_size_ = 0;
      return fail(ENOMEM);
    }
    block_buf_size_ = need;
  }
  char* buf = block_buf_.get();
  if (offset + data.size() > allocated_) {
    // Zeros from the first block after the data's end (this commit's write covers the rest).
    const std::uint64_t want = (offset + data.size() + kPreallocChunk) / kPreallocChunk * kPreallocChunk;
    std::memset(buf, 0, kPreallocChunk);
    for (std::uint64_t at = block_ceil(allocated_); at < want;) {
      const std::uint64_t n = std::min<std::uint64_t>(kPreallocChunk, want - at);
      if (auto ec = write_all(buf, n, at)) return ec;
      at += n;
    }
    allocated_ = want;
  }
  std::memcpy(buf, tail_.data(), tail_.size());
  std::memcpy(buf + tail_.size(), data.data(), data.size());
  std::memset(buf + tail_.size() + data.size(), 0, len - tail_.size() - data.size());
  return write_all(buf, len, start);
}

bool UsageJournal::read_recent(JournalPosition pos, std::size_t max_records, Batch& out) const {
  std::string bytes;
  {
    std::lock_guard lock(recent_mu_);
    if (pos.segment != recent_segment_ || pos.offset < recent_base_ || pos.offset >= recent_base_ + recent_.size())
      return false;
    const auto from = static_cast<std::size_t>(pos.offset - recent_base_);
    bytes.assign(recent_, from, std::min(recent_.size() - from, kRecentCopy));
  }
  std::size_t off = 0;
  while (off + kHeader <= bytes.size() && out.records.size() < max_records) {
    const std::uint32_t len = get_u32(bytes.data() + off);
    if (len == 0 || off + kHeader + len > bytes.size()) break;
    const std::string_view payload(bytes.data() + off + kHeader, len);
    if (crc32(payload) != get_u32(bytes.data() + off + 4))
      throw JournalError("checksum mismatch in the journal's committed bytes at " + segment_path(pos.segment) +
                         " offset " + std::to_string(pos.offset + off) + ": memory is damaged");
    out.records.push_back(decode_usage(payload));
    off += kHeader + len;
  }
  if (off == 0) return false;  // a frame larger than one copy: the file has it
  out.end = {pos.segment, pos.offset + off};
  return true;
}

UsageJournal::Batch UsageJournal::read(JournalPosition from, std::size_t max_records) const {
  Batch out;
  JournalPosition end;
  {
    std::lock_guard lock(mu_);
    end = end_;
  }
  out.end = from;
  if (from < end && read_recent(from, max_records, out)) return out;
  JournalPosition pos = from;
  while (out.records.size() < max_records && pos < end) {
    const std::string path = segment_path(pos.segment);
    SegmentWindow seg(path);
    const std::uint64_t stop = pos.segment == end.segment ? std::min(end.offset, seg.size())
                                                           : seg.size();
    std::uint64_t off = pos.offset;
    seg.start_at(off);
    while (off + kHeader <= stop && out.records.size() < max_records) {
      if (!seg.cover(off + kHeader, stop)) break;
      const std::uint32_t len = get_u32(seg.at(off));
      if (len == 0) break;  // zeros written ahead: the end of this segment's data
      if (off + kHeader + len > stop || !seg.cover(off + kHeader + len, stop)) break;
      const std::string_view payload(seg.at(off) + kHeader, len);
      if (crc32(payload) != get_u32(seg.at(off) + 4))
        throw JournalError("checksum mismatch in " + path + " at offset " + std::to_string(off) +
                           ": the journal is damaged");
      out.records.push_back(decode_usage(payload));
      off += kHeader + len;
    }
    pos.offset = off;
    out.end = pos;
    if (out.records.size() >= max_records) break;
    if (pos.segment == end.segment) break;
    pos = {pos.segment + 1, 0};  // the next segment
    out.end = pos;
  }
  return out;
}

JournalPosition UsageJournal::checkpoint() const {
  std::lock_guard lock(mu_);
  return checkpoint_;
}

JournalPosition UsageJournal::end() const {
  std::lock_guard lock(mu_);
  return end_;
}

void UsageJournal::write_checkpoint(JournalPosition pos) {
  const std::string path = opt_.dir + "/checkpoint", tmp = path + ".tmp";
  {
    std::string text = std::to_string(pos.segment) + " " + std::to_string(pos.offset) + "\n";
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd < 0) throw JournalError("cannot write " + tmp + ": " + std::strerror(errno));
    const bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) &&
                    (!opt_.fsync || ::fsync(fd) == 0);
    ::close(fd);
    if (!ok) throw JournalError("cannot write " + tmp + ": " + std::strerror(errno));
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0)
    throw JournalError("cannot replace " + path + ": " + std::strerror(errno));
  if (opt_.fsync) fsync_dir(opt_.dir);
}

void UsageJournal::commit_checkpoint(JournalPosition pos) {
  const auto now = std::chrono::steady_clock::now();
  const bool new_segment = pos.segment != persisted_.segment;
  if (new_segment || !persisted_at_ || now - *persisted_at_ >= opt_.checkpoint_interval) {
    write_checkpoint(pos);
    persisted_ = pos;
    persisted_at_ = now;
  }
  std::uint64_t current;
  {
    std::lock_guard lock(mu_);
    checkpoint_ = pos;
    current = end_.segment;
  }
  if (new_segment) {
    for (std::uint64_t seq : list_segments())
      if (seq < pos.segment && seq < current) fs::remove(segment_path(seq));
  }
}

std::uint64_t UsageJournal::backlog_bytes() const {
  std::lock_guard lock(mu_);
  if (end_.segment == checkpoint_.segment) return end_.offset - checkpoint_.offset;
  std::uint64_t total = end_.offset;
  for (std::uint64_t seq = checkpoint_.segment; seq < end_.segment; ++seq) {
    std::error_code ec;
    auto size = fs::file_size(segment_path(seq), ec);
    if (!ec) total += size - (seq == checkpoint_.segment ? checkpoint_.offset : 0);
  }
  return total;
}

}  // namespace infergate::billing
