#include "infergate/billing/ledger_writer.h"

#include <pthread.h>
#include <pqxx/pqxx>

#include "infergate/infra/log.h"

namespace infergate::billing {

LedgerWriter::LedgerWriter(UsageJournal& journal, infra::PostgresConfig pg, Options options,
                           infra::MetricsRegistry& metrics)
    : journal_(journal), pg_(std::move(pg)), opt_(options), metrics_(metrics) {
  auto& rows = metrics.counter("infergate_ledger_records_total",
                               "Journal records sent to the usage ledger, by result", {"result"});
  inserted_ = &rows.with({"inserted"});
  duplicates_ = &rows.with({"duplicate"});
  errors_ = &metrics
                 .counter("infergate_ledger_write_errors_total",
                          "Failed attempts to write a batch into the usage ledger")
                 .with({});
  backlog_gauge_ = metrics.gauge_callback("infergate_journal_backlog_bytes",
                         "Usage journal bytes not yet in the Postgres ledger",
                         [this] { return static_cast<double>(journal_.backlog_bytes()); });
}

LedgerWriter::~LedgerWriter() {
  stop();
  metrics_.remove_callback("infergate_journal_backlog_bytes", backlog_gauge_);
}

void LedgerWriter::start() {
  std::lock_guard lock(mu_);
  if (thread_.joinable()) return;
  stopping_ = false;
  thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "ig-ledger");
    loop();
  });
}

void LedgerWriter::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void LedgerWriter::notify() {
  {
    std::lock_guard lock(mu_);
    poked_ = true;
  }
  cv_.notify_all();
}

bool LedgerWriter::drain(std::chrono::milliseconds timeout) {
  const JournalPosition target = journal_.end();
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (journal_.checkpoint() < target) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    notify();
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

namespace {
// The batch insert, prepared once per connection (libpqxx registers it with the server on first
// use, and again after a reconnect): planning it costs Postgres more than a small batch's rows.
const std::string kInsert =
    "INSERT INTO usage_events (tenant_id, request_id, api_key_id, model, tier, prompt_tokens, "
    "completion_tokens, cached_tokens, status, finish_reason, started_at, ended_at, "
    "time_to_first_token_ms, price_version_id) "
    "SELECT tenant_id, request_id, nullif(api_key_id, ''), model, tier, prompt_tokens, "
    "completion_tokens, cached_tokens, status, nullif(finish_reason, ''), "
    "timestamptz 'epoch' + started_at_us * interval '1 microsecond', "
    "timestamptz 'epoch' + ended_at_us * interval '1 microsecond', ttft_ms, "
    "nullif(price_version_id, '') "
    "FROM json_to_recordset($1::json) AS x(tenant_id text, request_id text, api_key_id text, "
    "model text, tier text, prompt_tokens bigint, completion_tokens bigint, cached_tokens "
    "bigint, status text, finish_reason text, started_at_us bigint, ended_at_us bigint, "
    "ttft_ms integer, price_version_id text)";
const std::string kInsertSkippingKnown = kInsert + " ON CONFLICT DO NOTHING";
}  // namespace

std::size_t LedgerWriter::insert(pqxx::connection& conn, const std::vector<UsageRecord>& records) {
  if (records.empty()) return 0;
  // One statement for the whole batch: the records travel as one JSON array (json, not jsonb:
  // read once, it need not be converted into the binary form, which costs Postgres ~4 us a row).
  std::string array = "[";
  for (std::size_t i = 0; i < records.size(); ++i) {
    if (i) array += ',';
    array += encode_usage(records[i]);
  }
  array += ']';
  // Almost always no record of the batch is in the ledger yet, and a plain INSERT is cheaper
  // than one that skips conflicts (which checks each key first and logs each row twice). One
  // that is there already (a batch replayed after a crash, or sent again after a commit whose
  // answer was lost) fails the whole statement, leaving nothing behind, and the batch goes again
  // skipping the rows the ledger has: one row per request either way.
  // A single statement is a transaction of its own: no BEGIN and COMMIT round trips.
  conn.prepare("ig_ledger_insert", kInsert);  // no-ops once defined on this connection
  conn.prepare("ig_ledger_insert_skip", kInsertSkippingKnown);
  try {
    pqxx::nontransaction tx(conn);
    return static_cast<std::size_t>(tx.exec_prepared("ig_ledger_insert", array).affected_rows());
  } catch (const pqxx::unique_violation&) {
  }
  pqxx::nontransaction tx(conn);
  return static_cast<std::size_t>(tx.exec_prepared("ig_ledger_insert_skip", array).affected_rows());
}

void LedgerWriter::loop() {
  std::unique_ptr<pqxx::connection> conn;
  bool failing = false;
  for (;;) {
    {
      std::lock_guard lock(mu_);
      if (stopping_) return;
    }
    const JournalPosition from = journal_.checkpoint();
    UsageJournal::Batch batch;
    std::chrono::milliseconds wait = opt_.idle_poll;
    try {
      batch = journal_.read(from, opt_.batch_records);
      if (!batch.records.empty()) {
        if (!conn || !conn->is_open()) conn = std::make_unique<pqxx::connection>(pg_.conninfo());
        const std::size_t added = insert(*conn, batch.records);
        inserted_->inc(added);
        duplicates_->inc(batch.records.size() - added);
      }
      if (from < batch.end) journal_.commit_checkpoint(batch.end);
      if (failing) infra::log::info("usage ledger writes resumed");
      failing = false;
      if (batch.records.size() == opt_.batch_records) wait = std::chrono::milliseconds(0);
    } catch (const std::exception& e) {
      errors_->inc();
      conn.reset();
      if (!failing)
        infra::log::warn("usage ledger write failed; records stay in the journal and are retried",
                         {{"error", e.what()}});
      failing = true;
      wait = opt_.retry;
    }
    if (wait.count() > 0) {
      std::unique_lock lock(mu_);
      cv_.wait_for(lock, wait, [&] { return stopping_ || poked_; });
      poked_ = false;
    }
  }
}

}  // namespace infergate::billing
