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
  version                                  print the version

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
