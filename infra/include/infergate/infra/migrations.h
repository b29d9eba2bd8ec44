// Forward-only schema migrations: migrations/NNNN_name.sql, applied in order, each in its own
// transaction, recorded with a SHA-256 checksum in schema_migrations. A session-level advisory
// lock makes concurrent runs (two instances starting at once) apply each file exactly once.
#pragma once

#include <pqxx/connection>

#include <stdexcept>
#include <string>
#include <vector>

namespace infergate::infra {

struct Migration {
  std::string name;  // file name, e.g. "0001_tenants.sql"
  std::string sql;
  std::string checksum() const;  // sha256 hex of sql
};

class MigrationError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The migrations compiled into this binary (from migrations/ at build time), in order.
const std::vector<Migration>& embedded_migrations();

// Reads *.sql from a directory, sorted; rejects names not of the form NNNN_name.sql and
// duplicate numbers. Throws MigrationError.
std::vector<Migration> load_migrations(const std::string& dir);

// Validates a list (names, order, duplicates). Throws MigrationError.
void validate_migrations(const std::vector<Migration>& migrations);

struct MigrationResult {
  std::vector<std::string> applied;  // applied now, in order
  std::size_t already_applied = 0;
};

// Applies what is pending. Refuses (MigrationError, nothing applied) when an applied file has
// changed, when the database knows a migration the list lacks, or when a pending file is
// numbered before one already applied.
MigrationResult migrate(pqxx::connection& conn, const std::vector<Migration>& migrations);

}  // namespace infergate::infra
