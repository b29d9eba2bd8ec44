#include <pqxx/connection>

#include <cstdio>

#include "cli.h"
#include "infergate/infra/migrations.h"

namespace infergate::app {

int cmd_migrate(const std::vector<std::string>& args) {
  Flags flags = parse_flags(args, {"config", "dir"});
  if (!flags.positional.empty()) throw UsageError("unexpected argument " + flags.positional[0]);
  infra::Config cfg = load_config_for(flags);
  std::vector<infra::Migration> migrations =
      flags.get("dir") ? infra::load_migrations(*flags.get("dir")) : infra::embedded_migrations();

  std::unique_ptr<pqxx::connection> conn;
  try {
    conn = std::make_unique<pqxx::connection>(cfg.postgres.conninfo());
  } catch (const std::exception& e) {
    std::fprintf(stderr,
                 "infergate migrate: cannot connect to Postgres at %s:%u (database %s): %s\n"
                 "Is it running? scripts/services.sh start starts the local one.\n",
                 cfg.postgres.host.c_str(), cfg.postgres.port, cfg.postgres.database.c_str(),
                 e.what());
    return kExitFailed;
  }
  try {
    auto result = infra::migrate(*conn, migrations);
    for (const auto& name : result.applied) std::printf("applied %s\n", name.c_str());
    std::printf("migrations: %zu applied now, %zu already applied\n", result.applied.size(),
                result.already_applied);
    return kExitOk;
  } catch (const infra::MigrationError& e) {
    std::fprintf(stderr, "infergate migrate: %s\n", e.what());
    return kExitFailed;
  }
}

}  // namespace infergate::app
