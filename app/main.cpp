// infergate: a multi-tenant LLM inference gateway with metering.
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "cli.h"

namespace {

constexpr const char* kUsage = R"(usage: infergate <command> [options]

commands:
  serve    [--config PATH]                 run the gateway until SIGTERM/SIGINT
  migrate  [--config PATH] [--dir DIR]     apply pending database migrations (embedded ones,
                                           or the *.sql files in DIR)
  plans create --name N [--requests-per-minute N] [--tokens-per-minute N]
               [--max-concurrent-requests N] [--tokens-per-day N] [--tokens-per-month N]
               [--tiers a,b] [--weight N]          (limits: a number or 'unlimited')
  tenants create --name N --plan PLAN [--timezone IANA] [--currency XXX]
  keys create --tenant TENANT [--name N] [--expires-at RFC3339]
                                           issue an inference key (printed once)
  keys create-admin [--name N]             issue an admin key (printed once)
  demo-setup                               create the demo plan and tenant if missing, and
                                           print a new API key for it
  reconcile [--tenant T]                   recompute the day and month quota counters in Redis
                                           from the usage ledger (e.g. after Redis lost data)
  invoices generate --period YYYY-MM [--tenant T]
                                           draft (or redraft) the month's invoices: one tenant,
                                           or every tenant with usage or earlier invoices
  invoices finalize --period YYYY-MM [--tenant T]
                                           finalize the month's drafts (numbers assigned)
  invoices export --period YYYY-MM [--tenant T] [--status S] --format csv|json
                  [--out DIR] [--lines]    invoices.csv (or with --lines invoice_lines.csv) or
                                           JSON on stdout; with --out both CSV files (or
                                           invoices.json) in DIR
  invoices void ID --reason TEXT           void a finalized invoice (it keeps its number)
  make-model --preset toy|small|medium --out FILE [--type f32|f16|q8_0] [--seed N]
             [--chat chatml|llama3|llama2]
                                           write a llama GGUF model with deterministic random
                                           weights and a BPE vocabulary (no download needed)
  version                                  print the version

Every command takes --config PATH.

Config: --config PATH, else ./config/infergate.toml if present, else built-in defaults.
Any key can be overridden from the environment as INFERGATE_<SECTION>__<KEY>
(e.g. INFERGATE_SERVER__PORT=9000). See config/infergate.toml.
)";

}  // namespace

int main(int argc, char** argv) {
  using namespace infergate::app;
  if (argc < 2) {
    std::fputs(kUsage, stderr);
    return kExitUsage;
  }
  std::string cmd = argv[1];
  std::vector<std::string> args(argv + 2, argv + argc);
  try {
    if (cmd == "serve") return cmd_serve(args);
    if (cmd == "migrate") return cmd_migrate(args);
    if (cmd == "plans") return cmd_plans(args);
    if (cmd == "tenants") return cmd_tenants(args);
    if (cmd == "keys") return cmd_keys(args);
    if (cmd == "demo-setup") return cmd_demo_setup(args);
    if (cmd == "reconcile") return cmd_reconcile(args);
    if (cmd == "invoices") return cmd_invoices(args);
    if (cmd == "make-model") return cmd_make_model(args);
    if (cmd == "version" || cmd == "--version") {
      std::printf("infergate %s\n", INFERGATE_VERSION);
      return kExitOk;
    }
    if (cmd == "help" || cmd == "--help" || cmd == "-h") {
      std::fputs(kUsage, stdout);
      return kExitOk;
    }
    std::fprintf(stderr, "infergate: unknown command '%s'\n\n%s", cmd.c_str(), kUsage);
    return kExitUsage;
  } catch (const UsageError& e) {
    std::fprintf(stderr, "infergate %s: %s (see infergate help)\n", cmd.c_str(), e.what());
    return kExitUsage;
  } catch (const infergate::infra::ConfigError& e) {
    std::fprintf(stderr, "infergate: config error: %s\n", e.what());
    return kExitUsage;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "infergate %s: %s\n", cmd.c_str(), e.what());
    return kExitFailed;
  }
}
