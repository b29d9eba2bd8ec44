// The usage journal on a real file system: durability order, torn tails, corruption, segment
// rotation, checkpoints and group commit.
#include <boost/crc.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <gtest/gtest.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <thread>

#include "infergate/billing/crc32.h"
#include "infergate/billing/usage_journal.h"
#include "support/process.h"

namespace infergate::billing {
namespace {

namespace fs = std::filesystem;

// The frame checksum is the standard CRC-32: its check value, and boost's bytewise
// implementation (what earlier versions wrote) for every length and alignment up to 80 bytes,
// so journals written before still read.
TEST(Crc32Test, IsTheStandardCrc32AtEveryLengthAndAlignment) {
  EXPECT_EQ(crc32("123456789"), 0xCBF43926u);
  EXPECT_EQ(crc32(""), 0u);
  std::mt19937 rng(7);
  std::string buf(96, '\0');
  for (auto& c : buf) c = static_cast<char>(rng());
  for (std::size_t off = 0; off < 8; ++off) {
    for (std::size_t len = 0; off + len <= 88; ++len) {
      boost::crc_32_type ref;
      ref.process_bytes(buf.data() + off, len);
      ASSERT_EQ(crc32(std::string_view(buf.data() + off, len)), ref.checksum()) << "offset " << off << " length " << len;
    }
  }
}

UsageRecord record(int i) {
  UsageRecord r;
  r.tenant_id = "ten_" + std::to_string(i % 3);
  r.request_id = "req_" + std::to_string(i);
  r.api_key_id = "key";
  r.model = "toy";
  r.tier = "small";
  r.prompt_tokens = 10 + i;
  r.completion_tokens = i;
  r.status = i % 5 == 0 ? "cancelled" : "completed";
  r.finish_reason = "stop";
  r.started_at_us = 1'700'000'000'000'000 + i;
  r.ended_at_us = r.started_at_us + 1000;
  if (i % 2) r.time_to_first_token_ms = 12;
  return r;
}

std::string last_segment(const std::string& dir) {
  std::string best;
  for (const auto& e : fs::directory_iterator(dir)) {
    const auto name = e.path().filename().string();
    if (name.rfind("journal-", 0) == 0 && e.path().string() > best) best = e.path().string();
  }
  return best;
}

TEST(UsageRecordCodec, RoundTripsAndRejectsGarbage) {
  for (int i = 0; i < 4; ++i) EXPECT_EQ(decode_usage(encode_usage(record(i))), record(i));
  EXPECT_THROW(decode_usage("{"), std::invalid_argument);
  EXPECT_THROW(decode_usage("[]"), std::invalid_argument);
  EXPECT_THROW(decode_usage(R"({"tenant_id":"t"})"), std::invalid_argument);
}

// Strings that need escaping in JSON (quotes, backslashes, control characters) and UTF-8 come
// back as they went in, and the text is what Boost.JSON itself reads and writes.
TEST(UsageRecordCodec, EscapesWhatJsonNeedsAndKeepsUtf8) {
  UsageRecord r = record(1);
  r.model = "we\"ird\\model\n\t\x01\x1f end";
  r.tier = "gro\xc3\x9f \xe2\x82\xac";  // "groß €"
  r.price_version_id = "";
  r.time_to_first_token_ms.reset();
  const std::string text = encode_usage(r);
  EXPECT_EQ(decode_usage(text), r);
  const boost::json::value v = boost::json::parse(text);
  EXPECT_EQ(boost::json::serialize(v), text);  // the same bytes, in the same key order
  EXPECT_FALSE(v.as_object().contains("ttft_ms"));
}

TEST(UsageJournal, RecordsAreReadBackInOrderAfterReopening) {
  const std::string dir = test::make_temp_dir("journal");
  {
    UsageJournal j({dir});
    for (int i = 0; i < 100; ++i) j.append_sync(record(i));
  }
  UsageJournal j({dir});
  auto batch = j.read(j.checkpoint(), 1000);
  ASSERT_EQ(batch.records.size(), 100u);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(batch.records[static_cast<std::size_t>(i)], record(i));
  EXPECT_EQ(batch.end, j.end());
  auto part = j.read(j.checkpoint(), 30);  // bounded reads continue where they stopped
  ASSERT_EQ(part.records.size(), 30u);
  auto rest = j.read(part.end, 1000);
  ASSERT_EQ(rest.records.size(), 70u);
  EXPECT_EQ(rest.records.front(), record(30));
  fs::remove_all(dir);
}

TEST(UsageJournal, ATornLastRecordIsDroppedAndAppendingContinues) {
  const std::string dir = test::make_temp_dir("journal");
  {
    UsageJournal j({dir});
    for (int i = 0; i < 3; ++i) j.append_sync(record(i));
  }
  const std::string seg = last_segment(dir);
  const auto good_size = fs::file_size(seg);
  {
    // The process died in the middle of writing a fourth frame.
    std::ofstream out(seg, std::ios::binary | std::ios::app);
    const std::string payload = encode_usage(record(3));
    const std::uint32_t len = static_cast<std::uint32_t>(payload.size());
    out.write(reinterpret_cast<const char*>(&len), 4);
    out.write("\x01\x02\x03\x04", 4);
    out << payload.substr(0, payload.size() / 2);
  }
  UsageJournal j({dir});
  EXPECT_GT(j.torn_bytes_dropped(), 0u);
  EXPECT_EQ(fs::file_size(seg), good_size);  // cut back to the last whole record
  j.append_sync(record(4));
  auto batch = j.read(j.checkpoint(), 100);
  ASSERT_EQ(batch.records.size(), 4u);
  EXPECT_EQ(batch.records[2], record(2));
  EXPECT_EQ(batch.records[3], record(4));
  fs::remove_all(dir);
}

TEST(UsageJournal, ACorruptedLastRecordIsTreatedAsTorn) {
  const std::string dir = test::make_temp_dir("journal");
  {
    UsageJournal j({dir});
    for (int i = 0; i < 2; ++i) j.append_sync(record(i));
  }
  const std::string seg = last_segment(dir);
  {
    std::fstream f(seg, std::ios::binary | std::ios::in | std::ios::out);
    f.seekp(-3, std::ios::end);
    f.put('X');  // flip a byte inside the last payload: its checksum no longer matches
  }
  UsageJournal j({dir});
  auto batch = j.read(j.checkpoint(), 100);
  ASSERT_EQ(batch.records.size(), 1u);
  EXPECT_EQ(batch.records[0], record(0));
  fs::remove_all(dir);
}

// The segment being written has zeros ahead of its data. A process that dies leaves them there:
// the journal opened again reads every acknowledged record and nothing else, cuts the zeros and
// any frame that was being written when it died, and appends after the last record.
TEST(UsageJournal, ZerosWrittenAheadAreNotRecordsAfterACrash) {
  const std::string dir = test::make_temp_dir("journal");
  const std::string crashed = test::make_temp_dir("journal-crashed");
  const std::string torn = test::make_temp_dir("journal-torn");
  std::uintmax_t data_end = 0;
  {
    UsageJournal j({dir});
    for (int i = 0; i < 5; ++i) j.append_sync(record(i));
    data_end = j.end().offset;
    const std::string seg = last_segment(dir);
    EXPECT_GT(fs::file_size(seg), data_end);  // zero-filled ahead
    // The files as a crash would leave them (copied while the journal is open).
    fs::copy_file(seg, crashed + "/" + fs::path(seg).filename().string());
    fs::copy_file(seg, torn + "/" + fs::path(seg).filename().string());
  }
  EXPECT_EQ(fs::file_size(last_segment(dir)), data_end);  // closed cleanly: cut to its data
  {
    // Half a frame was being written into the zeros when the process died.
    std::fstream f(last_segment(torn), std::ios::binary | std::ios::in | std::ios::out);
    f.seekp(static_cast<std::streamoff>(data_end));
    const std::string payload = encode_usage(record(99));
    const std::uint32_t len = static_cast<std::uint32_t>(payload.size());
    f.write(reinterpret_cast<const char*>(&len), 4);
    f.write("\x01\x02\x03\x04", 4);
    f << payload.substr(0, payload.size() / 2);
  }
  for (const std::string& d : {crashed, torn}) {
    UsageJournal j({d});
    EXPECT_EQ(j.end().offset, data_end) << d;
    EXPECT_EQ(fs::file_size(last_segment(d)), data_end) << d;
    EXPECT_EQ(j.torn_bytes_dropped() > 0, d == torn) << d;
    j.append_sync(record(5));
    const auto batch = j.read(j.checkpoint(), 100);
    ASSERT_EQ(batch.records.size(), 6u) << d;
    for (int i = 0; i < 6; ++i) EXPECT_EQ(batch.records[static_cast<std::size_t>(i)], record(i)) << d;
  }
  for (const std::string& d : {dir, crashed, torn}) fs::remove_all(d);
}

// A reader of a finished segment left with zeros after its data (the process died between
// rotating and cutting them) stops at the zeros and goes on in the next segment.
TEST(UsageJournal, AReaderStopsAtZerosAndGoesOnInTheNextSegment) {
  const std::string dir = test::make_temp_dir("journal");
  UsageJournal::Options opt{dir, 2048};
  {
    UsageJournal j(opt);
    for (int i = 0; i < 20; ++i) j.append_sync(record(i));
  }
  std::vector<std::string> segs;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().filename().string().rfind("journal-", 0) == 0) segs.push_back(e.path().string());
  std::sort(segs.begin(), segs.end());
  ASSERT_GE(segs.size(), 2u);
  fs::resize_file(segs.front(), fs::file_size(segs.front()) + 4096);  // zeros after its data
  UsageJournal j(opt);
  const auto batch = j.read(j.checkpoint(), 100);
  ASSERT_EQ(batch.records.size(), 20u);
  for (int i = 0; i < 20; ++i) EXPECT_EQ(batch.records[static_cast<std::size_t>(i)], record(i));
  fs::remove_all(dir);
}

TEST(UsageJournal, SegmentsRotateAndCheckpointsDeleteWhatIsInTheLedger) {
  const std::string dir = test::make_temp_dir("journal");
  UsageJournal::Options opt{dir, 2048};
  JournalPosition middle;
  {
    UsageJournal j(opt);
    for (int i = 0; i < 60; ++i) j.append_sync(record(i));
    auto first = j.read(j.checkpoint(), 25);
    ASSERT_EQ(first.records.size(), 25u);
    middle = first.end;
    j.commit_checkpoint(middle);
    EXPECT_GT(j.backlog_bytes(), 0u);
  }
  std::size_t segments = 0;
  for (const auto& e : fs::directory_iterator(dir))
    segments += e.path().filename().string().rfind("journal-", 0) == 0;
  EXPECT_GE(segments, 2u);  // rotated, and the early ones are gone
  UsageJournal j(opt);
  EXPECT_EQ(j.checkpoint(), middle);  // persisted
  auto rest = j.read(j.checkpoint(), 1000);
  ASSERT_EQ(rest.records.size(), 35u);
  EXPECT_EQ(rest.records.front(), record(25));
  EXPECT_EQ(rest.records.back(), record(59));
  j.commit_checkpoint(rest.end);
  EXPECT_EQ(j.backlog_bytes(), 0u);
  fs::remove_all(dir);
}

// A segment that cannot be created when the journal rotates (here a directory in its place;
// in production a full directory or file table) fails the commits that needed it, and only
// those: once it can be created, appends succeed again, nothing acknowledged is lost and
// nothing refused is there. The finished segment stays whole throughout.
TEST(UsageJournal, ASegmentThatCannotBeCreatedFailsOnlyTheCommitsThatNeedIt) {
  const std::string dir = test::make_temp_dir("journal");
  for (const bool direct : {true, false}) {
    SCOPED_TRACE(direct ? "direct" : "buffered");
    fs::remove_all(dir);
    UsageJournal::Options opt{dir, 2048};
    opt.direct_io = direct;
    std::vector<UsageRecord> acknowledged;
    std::size_t refused = 0;
    {
      UsageJournal j(opt);
      int i = 0;
      const auto try_append = [&]() -> bool {
        try {
          j.append_sync(record(i));
          acknowledged.push_back(record(i++));
          return true;
        } catch (const JournalError&) {
          ++i;
          ++refused;
          return false;
        }
      };
      while (j.end().segment == 1) ASSERT_TRUE(try_append());
      // Segment 2 exists now; block segment 3 and fill segment 2 until a commit needs it.
      const fs::path next = fs::path(dir) / "journal-0000000000000003.log";
      fs::create_directory(next);
      int failures = 0;
      for (int k = 0; k < 200 && failures < 3; ++k) failures += try_append() ? 0 : 1;
      ASSERT_EQ(failures, 3) << "the journal never needed its third segment";
      EXPECT_EQ(j.end().segment, 2u);
      fs::remove(next);
      for (int k = 0; k < 5; ++k) EXPECT_TRUE(try_append()) << "appends still fail once the segment can be created";
      EXPECT_EQ(j.end().segment, 3u);
    }
    EXPECT_EQ(refused, 3u);
    UsageJournal j(opt);
    const auto all = j.read(j.checkpoint(), 100000);
    EXPECT_EQ(all.records, acknowledged);
  }
  fs::remove_all(dir);
}

// A commit that cannot be written (here: the file may not grow, RLIMIT_FSIZE, as on a full
// disk) refuses its records, and only those: what it may have written is cut, the next commits
// land once the file can grow again, and after a reopen the journal holds exactly the records
// that were acknowledged.
TEST(UsageJournal, AFailedCommitRefusesItsRecordsAndLaterCommitsLand) {
  const std::string dir = test::make_temp_dir("journal");
  struct sigaction ignore {}, old_action {};
  ignore.sa_handler = SIG_IGN;
  ASSERT_EQ(::sigaction(SIGXFSZ, &ignore, &old_action), 0);
  rlimit old_limit{};
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &old_limit), 0);
  for (const bool direct : {true, false}) {
    SCOPED_TRACE(direct ? "direct" : "buffered");
    fs::remove_all(dir);
    UsageJournal::Options opt{dir};
    opt.direct_io = direct;
    std::vector<UsageRecord> acknowledged;
    int refused = 0;
    {
      UsageJournal j(opt);
      int i = 0;
      const auto append = [&]() -> bool {
        const UsageRecord r = record(i++);
        try {
          j.append_sync(r);
          acknowledged.push_back(r);
          return true;
        } catch (const JournalError&) {
          ++refused;
          return false;
        }
      };
      ASSERT_TRUE(append());  // the segment's first MiB is written ahead
      rlimit small = old_limit;
      small.rlim_cur = 1u << 20;  // it may not grow past it
      ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &small), 0);
      int k = 0;
      while (k < 20000 && append()) ++k;
      ASSERT_LT(k, 20000) << "no commit needed the file to grow";
      EXPECT_FALSE(append());  // still refused: the same growth is needed
      ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &old_limit), 0);
      for (int n = 0; n < 10; ++n) EXPECT_TRUE(append()) << "commits still fail once the file can grow";
    }
    EXPECT_EQ(refused, 2);
    UsageJournal j(opt);
    EXPECT_EQ(j.torn_bytes_dropped(), 0u);
    const auto all = j.read(j.checkpoint(), 100000);
    EXPECT_EQ(all.records, acknowledged);
  }
  ::setrlimit(RLIMIT_FSIZE, &old_limit);
  ::sigaction(SIGXFSZ, &old_action, nullptr);
  fs::remove_all(dir);
}

// The checkpoint file is rewritten at most once per interval while the checkpoint stays in one
// segment (each rewrite is device flushes that request commits queue behind); what the journal
// last recorded is on disk once it closes. A crash in between replays from the older one.
TEST(UsageJournal, CheckpointsWithinASegmentReachDiskOncePerIntervalAndOnClose) {
  const std::string dir = test::make_temp_dir("journal");
  const std::string crashed = dir + "-crashed";
  UsageJournal::Options opt{dir};
  // Longer than any machine's uptime: the first write must not depend on the steady clock being
  // far from zero (it starts near zero at boot).
  opt.checkpoint_interval = std::chrono::hours(24 * 365 * 50);
  auto text = [](JournalPosition p) { return std::to_string(p.segment) + " " + std::to_string(p.offset) + "\n"; };
  JournalPosition first, second;
  {
    UsageJournal j(opt);
    for (int i = 0; i < 10; ++i) j.append_sync(record(i));
    first = j.read(j.checkpoint(), 4).end;
    j.commit_checkpoint(first);  // the first one is written at once
    EXPECT_EQ(test::read_file(dir + "/checkpoint"), text(first));
    second = j.read(first, 3).end;
    j.commit_checkpoint(second);
    EXPECT_EQ(j.checkpoint(), second);
    EXPECT_EQ(j.backlog_bytes(), j.end().offset - second.offset);
    EXPECT_EQ(test::read_file(dir + "/checkpoint"), text(first));  // within the interval: not yet
    fs::copy(dir, crashed);  // the process dying now leaves this
    fs::remove(crashed + "/lock");
  }
  EXPECT_EQ(test::read_file(dir + "/checkpoint"), text(second));  // closed: written
  {
    UsageJournal j(opt);
    EXPECT_EQ(j.checkpoint(), second);
    EXPECT_EQ(j.read(j.checkpoint(), 100).records.size(), 3u);
  }
  UsageJournal after_crash({crashed});
  EXPECT_EQ(after_crash.checkpoint(), first);  // the 3 records after it go to the ledger again
  const auto replay = after_crash.read(after_crash.checkpoint(), 100);
  ASSERT_EQ(replay.records.size(), 6u);
  EXPECT_EQ(replay.records.front(), record(4));
  fs::remove_all(dir);
  fs::remove_all(crashed);
}

// Whether `dir`'s file system takes O_DIRECT (tmpfs does not).
bool direct_io_possible(const std::string& dir) {
  const std::string probe = dir + "/direct-probe";
  const int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_DIRECT | O_CLOEXEC, 0640);
  if (fd >= 0) ::close(fd);
  fs::remove(probe);
  return fd >= 0;
}

// Direct commits (whole 4 KiB blocks, the last one's earlier bytes kept in memory) leave the same
// journal, byte for byte, as writes through the page cache: records of every size across block
// boundaries and the 1 MiB zero fill, a reopen in the middle of a block (whose first bytes then
// come from the file), and a crash copy taken with the zeros ahead still in place.
TEST(UsageJournal, DirectCommitsWriteTheSameJournalAsBufferedOnes) {
  const std::string direct_dir = test::make_temp_dir("journal-direct");
  const std::string buffered_dir = test::make_temp_dir("journal-buffered");
  const std::string crashed = direct_dir + "-crashed";
  auto big = [](int i) {
    UsageRecord r = record(i);
    r.model = std::string(static_cast<std::size_t>(i * 37 % 900), 'm');  // 0.1 to 1 KiB frames
    return r;
  };
  auto write = [&](const std::string& dir, bool direct, int from, int to) {
    UsageJournal::Options o{dir};
    o.direct_io = direct;
    UsageJournal j(o);
    EXPECT_EQ(j.writes_direct(), direct && direct_io_possible(dir)) << dir;
    for (int i = from; i < to; ++i) j.append_sync(big(i));
    if (direct && to == 2500) {
      fs::copy(dir, crashed);  // what a crash now would leave: zeros ahead, no final cut
      fs::remove(crashed + "/lock");
    }
  };
  ASSERT_TRUE(direct_io_possible(direct_dir)) << "the test's directory must take O_DIRECT";
  for (const bool direct : {true, false}) {
    const std::string& dir = direct ? direct_dir : buffered_dir;
    write(dir, direct, 0, 7);        // 7 frames: the journal ends inside its first block
    write(dir, direct, 7, 2500);     // reopened mid-block; past the first 1 MiB of zeros
    write(dir, direct, 2500, 2600);
  }
  const std::string a = test::read_file(last_segment(direct_dir));
  const std::string b = test::read_file(last_segment(buffered_dir));
  EXPECT_GT(a.size(), std::size_t{1} << 20);
  EXPECT_TRUE(a == b) << "direct " << a.size() << " bytes, buffered " << b.size();
  {
    UsageJournal j({direct_dir});
    const auto all = j.read(j.checkpoint(), 10000);
    ASSERT_EQ(all.records.size(), 2600u);
    for (int i = 0; i < 2600; i += 97) EXPECT_EQ(all.records[static_cast<std::size_t>(i)], big(i)) << i;
  }
  UsageJournal after_crash({crashed});
  EXPECT_EQ(after_crash.torn_bytes_dropped(), 0u);
  const auto kept = after_crash.read(after_crash.checkpoint(), 10000);
  ASSERT_EQ(kept.records.size(), 2500u);
  EXPECT_EQ(kept.records.back(), big(2499));
  fs::remove_all(direct_dir);
  fs::remove_all(buffered_dir);
  fs::remove_all(crashed);
}

// flush() returns only after the callbacks of everything appended before it have run.
TEST(UsageJournal, FlushWaitsForTheCallbacksOfEarlierAppends) {
  const std::string dir = test::make_temp_dir("journal");
  UsageJournal j({dir});
  std::atomic<int> done{0};
  for (int round = 1; round <= 5; ++round) {
    for (int i = 0; i < 50; ++i) j.append(record(i), [&done](std::error_code ec) { done += ec ? 1000 : 1; });
    j.flush();
    EXPECT_EQ(done.load(), 50 * round);
  }
  fs::remove_all(dir);
}

TEST(UsageJournal, GroupCommitSyncsManyRecordsAtOnce) {
  const std::string dir = test::make_temp_dir("journal");
  UsageJournal j({dir});
  constexpr int kThreads = 8, kEach = 100;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) j.append_sync(record(t * kEach + i));
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(j.read(j.checkpoint(), 10000).records.size(), static_cast<std::size_t>(kThreads * kEach));
  // Each fdatasync covered several records (8 writers wait on the same sync).
  EXPECT_LT(j.fsync_count(), static_cast<std::uint64_t>(kThreads * kEach) / 2);
  fs::remove_all(dir);
}

// The latest commits (a few MiB of the current segment) are read from memory, older ones from
// the file: damage done to the file after a commit does not reach a reader of the running
// journal, whose copy is what was committed, but a reopened journal reads the file and finds it.
TEST(UsageJournal, RecentCommitsAreReadFromMemoryOlderOnesFromTheFile) {
  const std::string dir = test::make_temp_dir("journal");
  auto big = [](int i) {
    UsageRecord r = record(i);
    r.model = std::string(1500, static_cast<char>('a' + i % 26));
    return r;
  };
  constexpr int kThreads = 8, kEach = 500;  // ~6 MiB: more than the 4 MiB kept in memory
  {
    UsageJournal j({dir});
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t)
      threads.emplace_back([&, t] {
        for (int i = 0; i < kEach; ++i) j.append_sync(big(t * kEach + i));
      });
    for (auto& t : threads) t.join();
    auto read_everything = [&j] {  // in batches, as the ledger writer reads
      std::vector<UsageRecord> out;
      for (JournalPosition at = j.checkpoint(); at < j.end();) {
        auto b = j.read(at, 700);
        if (b.records.empty()) {
          ADD_FAILURE() << "no record at offset " << at.offset;
          break;
        }
        out.insert(out.end(), b.records.begin(), b.records.end());
        at = b.end;
      }
      return out;
    };
    const std::vector<UsageRecord> all = read_everything();
    ASSERT_EQ(all.size(), static_cast<std::size_t>(kThreads * kEach));
    std::set<std::string> ids;
    for (const auto& r : all) {
      ids.insert(r.request_id);
      EXPECT_EQ(r.model.size(), 1500u);
    }
    EXPECT_EQ(ids.size(), all.size());
    // Damage the last record's payload on disk.
    const std::string path = last_segment(dir);
    const std::uint64_t last_frame_at = j.end().offset - 1000;  // inside the last frame (~1.6 KiB each)
    {
      std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
      f.seekp(static_cast<std::streamoff>(last_frame_at));
      f.write("XXXX", 4);
    }
    const std::vector<UsageRecord> again = read_everything();
    ASSERT_EQ(again.size(), all.size());
    EXPECT_EQ(again.back(), all.back());  // from memory: as committed
  }
  UsageJournal reopened({dir});
  // The damaged frame is the last: reopening treats it as a torn tail and drops it.
  EXPECT_GT(reopened.torn_bytes_dropped(), 0u);
  EXPECT_EQ(reopened.read(reopened.checkpoint(), 10000).records.size(), static_cast<std::size_t>(kThreads * kEach - 1));
  fs::remove_all(dir);
}

TEST(UsageJournal, OneProcessPerJournal) {
  const std::string dir = test::make_temp_dir("journal");
  UsageJournal first({dir});
  try {
    UsageJournal second({dir});
    FAIL() << "two journals opened on one directory";
  } catch (const JournalError& e) {
    EXPECT_NE(std::string(e.what()).find("in use by another process"), std::string::npos);
  }
  fs::remove_all(dir);
}

TEST(UsageJournal, ADamagedCheckpointFileIsAClearError) {
  const std::string dir = test::make_temp_dir("journal");
  test::write_file(dir + "/checkpoint", "not numbers");
  try {
    UsageJournal j({dir});
    FAIL() << "expected JournalError";
  } catch (const JournalError& e) {
    EXPECT_NE(std::string(e.what()).find("checkpoint"), std::string::npos);
  }
  fs::remove_all(dir);
}

}  // namespace
}  // namespace infergate::billing
