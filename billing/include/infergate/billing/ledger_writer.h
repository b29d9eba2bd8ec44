// Moves durable journal records into the Postgres usage ledger, off the io threads: batches of
// records in one multi-row INSERT ... ON CONFLICT DO NOTHING (the ledger's key decides, so a
// record sent twice is stored once), then the journal checkpoint advances. Postgres down: the
// journal grows (infergate_journal_backlog_bytes) and drains when it returns. A record that
// Postgres refuses for its content goes to usage_rejected rather than stopping the ledger (see
// write()). Thread-safe.
#pragma once

#include <pqxx/connection>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "infergate/billing/usage_journal.h"
#include "infergate/infra/config.h"
#include "infergate/infra/metrics.h"

namespace infergate::billing {

class LedgerWriter {
 public:
  struct Options {
    std::size_t batch_records = 1000;
    std::chrono::milliseconds idle_poll{20};
    std::chrono::milliseconds retry{500};
  };
  LedgerWriter(UsageJournal& journal, infra::PostgresConfig pg, Options options,
               infra::MetricsRegistry& metrics);
  ~LedgerWriter();

  void start();
  void stop();
  // Returns once everything durable in the journal when called is in Postgres (true), or at
  // the deadline (false).
  bool drain(std::chrono::milliseconds timeout);
  // Wakes the writer (e.g. after appends) instead of waiting for its poll.
  void notify();

  // Inserts records; returns how many were new. Throws pqxx errors.
  static std::size_t insert(pqxx::connection& conn, const std::vector<UsageRecord>& records);
  // insert(), except that records Postgres refuses for their content (a constraint of
  // usage_events, a value out of range) do not hold up the others: the batch goes again record
  // by record, and each refused record is kept whole in usage_rejected (logged as an error,
  // counted as result="rejected") instead of being retried forever. Throws pqxx errors
  // otherwise (Postgres unreachable: the batch is retried).
  struct Written {
    std::size_t inserted = 0, rejected = 0;
  };
  static Written write(pqxx::connection& conn, const std::vector<UsageRecord>& records);

 private:
  void loop();
  UsageJournal& journal_;
  infra::PostgresConfig pg_;
  Options opt_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  bool poked_ = false;
  std::thread thread_;
  infra::Counter* inserted_;
  infra::Counter* duplicates_;
  infra::Counter* rejected_;
  infra::Counter* errors_;
  infra::MetricsRegistry& metrics_;
  std::uint64_t backlog_gauge_ = 0;
};

}  // namespace infergate::billing
