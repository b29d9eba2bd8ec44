#include "infergate/infra/migrations.h"

#include <pqxx/pqxx>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>

#include "infergate/infra/log.h"
#include "infergate/infra/sha256.h"

namespace infergate::infra {
namespace {

// An arbitrary constant that identifies "infergate schema migrations" among advisory locks.
constexpr long long kMigrationLockKey = 0x1f6e7267617465LL;

int number_of(const std::string& name) { return std::stoi(name.substr(0, 4)); }

}  // namespace

std::string Migration::checksum() const { return sha256_hex(sql); }

void validate_migrations(const std::vector<Migration>& migrations) {
  static const std::regex pattern("^[0-9]{4}_[a-z0-9_]+\\.sql$");
  int previous = -1;
  for (const auto& m : migrations) {
    if (!std::regex_match(m.name, pattern))
      throw MigrationError("migration file name '" + m.name +
                           "' is not of the form NNNN_lowercase_name.sql");
    int n = number_of(m.name);
    if (n == previous)
      throw MigrationError("two migrations share the number " + m.name.substr(0, 4) +
                           "; give each file its own number");
    if (n < previous) throw MigrationError("migrations are not sorted by number at " + m.name);
    previous = n;
  }
}

std::vector<Migration> load_migrations(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(dir, ec))
    throw MigrationError("migrations directory '" + dir + "' does not exist");
  std::vector<Migration> out;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (!entry.is_regular_file() || entry.path().extension() != ".sql") continue;
    std::ifstream in(entry.path(), std::ios::binary);
    if (!in) throw MigrationError("cannot read " + entry.path().string());
    std::stringstream buf;
    buf << in.rdbuf();
    out.push_back({entry.path().filename().string(), buf.str()});
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
  validate_migrations(out);
  return out;
}

MigrationResult migrate(pqxx::connection& conn, const std::vector<Migration>& migrations) {
  validate_migrations(migrations);
  // A session-level lock: it outlives the short statements below and every migration's own
  // transaction (libpqxx allows one transaction object at a time on a connection).
  auto exec = [&conn](const std::string& sql) {
    pqxx::nontransaction tx(conn);
    return tx.exec(sql);
  };
  exec("SELECT pg_advisory_lock(" + std::to_string(kMigrationLockKey) + ")");
  struct Unlock {
    pqxx::connection& c;
    ~Unlock() {
      try {
        pqxx::nontransaction tx(c);
        tx.exec("SELECT pg_advisory_unlock(" + std::to_string(kMigrationLockKey) + ")");
      } catch (...) {
        // The lock goes with the session anyway.
      }
    }
  } unlock{conn};

  exec(
      "CREATE TABLE IF NOT EXISTS schema_migrations ("
      " name text PRIMARY KEY,"
      " checksum text NOT NULL,"
      " applied_at timestamptz NOT NULL DEFAULT now())");
  std::map<std::string, std::string> applied;
  for (const auto& row : exec("SELECT name, checksum FROM schema_migrations"))
    applied.emplace(row[0].as<std::string>(), row[1].as<std::string>());

  // Refuse before changing anything.
  std::map<std::string, const Migration*> by_name;
  for (const auto& m : migrations) by_name.emplace(m.name, &m);
  std::string last_applied;
  for (const auto& [name, checksum] : applied) {
    auto it = by_name.find(name);
    if (it == by_name.end())
      throw MigrationError("the database has migration " + name +
                           " applied, which this build does not have; run a newer infergate");
    if (it->second->checksum() != checksum)
      throw MigrationError("migration " + name +
                           " has changed since it was applied (checksum " + checksum.substr(0, 12) +
                           "… in the database, " + it->second->checksum().substr(0, 12) +
                           "… now); migrations are forward-only: restore the file and add a new "
                           "migration instead");
    last_applied = std::max(last_applied, name);
  }

  MigrationResult result;
  for (const auto& m : migrations) {
    if (applied.count(m.name)) {
      ++result.already_applied;
      continue;
    }
    if (!last_applied.empty() && m.name < last_applied)
      throw MigrationError("migration " + m.name + " is pending but the later " + last_applied +
                           " is already applied; number new migrations after the last one");
  }
  for (const auto& m : migrations) {
    if (applied.count(m.name)) continue;
    pqxx::work tx(conn);
    try {
      tx.exec(m.sql);
    } catch (const pqxx::sql_error& e) {
      throw MigrationError("migration " + m.name + " failed and was rolled back: " + e.what());
    }
    tx.exec_params("INSERT INTO schema_migrations (name, checksum) VALUES ($1, $2)", m.name,
                   m.checksum());
    tx.commit();
    log::info("migration applied", {{"name", m.name}});
    result.applied.push_back(m.name);
  }
  return result;
}

}  // namespace infergate::infra
