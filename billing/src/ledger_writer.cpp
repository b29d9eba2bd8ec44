#include "infergate/billing/ledger_writer.h"

#include <pthread.h>
#include <pqxx/pqxx>
#include <pqxx/tablewriter>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <ctime>
#include <string_view>

#include "infergate/infra/log.h"

namespace infergate::billing {

LedgerWriter::LedgerWriter(UsageJournal& journal, infra::PostgresConfig pg, Options options,
                           infra::MetricsRegistry& metrics)
    : journal_(journal), pg_(std::move(pg)), opt_(options), metrics_(metrics) {
  auto& rows = metrics.counter("infergate_ledger_records_total",
                               "Journal records sent to the usage ledger, by result", {"result"});
  inserted_ = &rows.with({"inserted"});
  duplicates_ = &rows.with({"duplicate"});
  rejected_ = &rows.with({"rejected"});
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
// A replayed batch (some rows may be in the ledger already) goes as one statement that skips the
// rows the ledger has, prepared once per connection (libpqxx registers it with the server on
// first use, and again after a reconnect). The records travel as one JSON array (json, not jsonb:
// read once, it need not be converted into the binary form).
const std::string kInsertSkippingKnown =
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
    "ttft_ms integer, price_version_id text) "
    "ON CONFLICT DO NOTHING";

const std::vector<std::string> kCopyColumns{
    "tenant_id",     "request_id", "api_key_id", "model",    "tier",     "prompt_tokens",          "completion_tokens",
    "cached_tokens", "status",     "finish_reason", "started_at", "ended_at", "time_to_first_token_ms", "price_version_id"};

// Appends unix microseconds as a timestamptz field in COPY's text form
// ("2026-11-22 23:45:01.123456+00"), for the years 1970 to 9999 (in_copy_range); a record outside
// them goes by the JSON statement.
constexpr std::int64_t kCopyMaxUs = 253402300799999999;  // 9999-12-31 23:59:59.999999 UTC
bool in_copy_range(std::int64_t us) { return us >= 0 && us <= kCopyMaxUs; }
void copy_timestamp(std::string& out, std::int64_t us) {
  const std::time_t secs = static_cast<std::time_t>(us / 1000000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[96];  // the fields are bounded by in_copy_range; the size by what the compiler can tell
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02d %02d:%02d:%02d.%06lld+00", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<long long>(us % 1000000));
  out += buf;
  out += '\t';
}
// The fields of a COPY row in its text format: tabs between fields, \N for NULL, and in a text
// the backslash and the characters that would end a field or a row escaped. UTF-8 needs nothing
// more: no byte of a multibyte character is below 0x80.
void copy_text(std::string& out, std::string_view s) {
  for (const char c : s) {
    switch (c) {
      case '\\': out += "\\\\"; break;
      case '\t': out += "\\t"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      default: out += c;
    }
  }
  out += '\t';
}
// An empty text is NULL in the ledger (no key, no finish reason, no price version).
void copy_text_or_null(std::string& out, std::string_view s) {
  if (s.empty()) {
    out += "\\N\t";
  } else {
    copy_text(out, s);
  }
}
void copy_int(std::string& out, std::int64_t v) {
  char buf[24];
  out.append(buf, std::to_chars(buf, buf + sizeof buf, v).ptr);
  out += '\t';
}
void copy_row(std::string& out, const UsageRecord& r) {
  copy_text(out, r.tenant_id);
  copy_text(out, r.request_id);
  copy_text_or_null(out, r.api_key_id);
  copy_text(out, r.model);
  copy_text(out, r.tier);
  copy_int(out, r.prompt_tokens);
  copy_int(out, r.completion_tokens);
  copy_int(out, r.cached_tokens);
  copy_text(out, r.status);
  copy_text_or_null(out, r.finish_reason);
  copy_timestamp(out, r.started_at_us);
  copy_timestamp(out, r.ended_at_us);
  if (r.time_to_first_token_ms) {
    copy_int(out, *r.time_to_first_token_ms);
  } else {
    out += "\\N\t";
  }
  copy_text_or_null(out, r.price_version_id);
  out.back() = '\n';
}
}  // namespace

namespace {
// Postgres refuses the data itself (SQLSTATE class 22, data exception, or 23, integrity
// constraint violation, other than the duplicate key that insert() expects): sending the same
// records again can never succeed.
bool refuses_content(const pqxx::sql_error& e) {
  const std::string& state = e.sqlstate();
  return state.rfind("22", 0) == 0 || (state.rfind("23", 0) == 0 && state != "23505");
}
}  // namespace

LedgerWriter::Written LedgerWriter::write(pqxx::connection& conn, const std::vector<UsageRecord>& records) {
  try {
    return {insert(conn, records), 0};
  } catch (const pqxx::sql_error& e) {
    if (!refuses_content(e)) throw;
  }
  // A record of the batch is refused: find it (them) by sending the records one at a time.
  // Written ones stay written should a later one fail otherwise (Postgres gone): the retry
  // skips them like any replay.
  Written w;
  std::vector<UsageRecord> one(1);
  for (const UsageRecord& r : records) {
    one[0] = r;
    try {
      w.inserted += insert(conn, one);
      continue;
    } catch (const pqxx::sql_error& e) {
      if (!refuses_content(e)) throw;
      conn.prepare("ig_ledger_reject",
                   "INSERT INTO usage_rejected (record, error) VALUES ($1, $2) ON CONFLICT DO NOTHING");
      pqxx::nontransaction tx(conn);
      tx.exec_prepared("ig_ledger_reject", encode_usage(r), std::string(e.what()));
      infra::log::error("usage record refused by the ledger; kept in usage_rejected, not billed until corrected",
                        {{"tenant", r.tenant_id}, {"request_id", r.request_id}, {"error", e.what()}});
    }
    ++w.rejected;
  }
  return w;
}

std::size_t LedgerWriter::insert(pqxx::connection& conn, const std::vector<UsageRecord>& records) {
  if (records.empty()) return 0;
  // Almost always no record of the batch is in the ledger yet: the batch goes by COPY, which
  // costs Postgres least a row (no statement to parse per batch, no JSON to read). One that is
  // there already (a batch replayed after a crash, or sent again after a commit whose answer was
  // lost) fails the whole COPY, leaving nothing behind, and the batch goes again by a statement
  // that skips the rows the ledger has: one row per request either way. Either is a single
  // statement, a transaction of its own: no BEGIN and COMMIT round trips.
  const bool copyable = std::all_of(records.begin(), records.end(), [](const UsageRecord& r) {
    return in_copy_range(r.started_at_us) && in_copy_range(r.ended_at_us);
  });
  if (copyable) {
    std::string rows;
    rows.reserve(records.size() * 256);
    for (const UsageRecord& r : records) copy_row(rows, r);
    rows.pop_back();  // the last row's newline: the copy stream adds one after what it is given
    try {
      pqxx::nontransaction tx(conn);
      // The whole batch in one piece of the copy stream, escaped above (libpqxx 6's stream_to
      // formats field by field, which cost more here than Postgres saved; its tablewriter takes
      // the text as it is).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
      pqxx::tablewriter copy(tx, "usage_events", kCopyColumns.begin(), kCopyColumns.end());
#pragma GCC diagnostic pop
      copy.write_raw_line(rows);
      copy.complete();
      return records.size();
    } catch (const pqxx::unique_violation&) {
    }
  }
  std::string array = "[";
  for (std::size_t i = 0; i < records.size(); ++i) {
    if (i) array += ',';
    array += encode_usage(records[i]);
  }
  array += ']';
  conn.prepare("ig_ledger_insert_skip", kInsertSkippingKnown);  // no-op once defined on this connection
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
        const Written w = write(*conn, batch.records);
        inserted_->inc(w.inserted);
        rejected_->inc(w.rejected);
        duplicates_->inc(batch.records.size() - w.inserted - w.rejected);
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
