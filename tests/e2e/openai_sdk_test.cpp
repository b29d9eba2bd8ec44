// The official `openai` npm SDK against the real binary: installed from npm once into the build
// directory, then tests/e2e/openai_sdk/sdk_test.mjs runs its checks (chat and completions,
// streaming with usage, typed errors for 401/403/404/429) and must exit 0.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cctype>
#include <filesystem>
#include <thread>

#include "completions_support.h"

namespace infergate {
namespace {

namespace fs = std::filesystem;

// Installs openai@4 into IG_NPM_DIR unless it is there; an error message when that fails.
std::string install_sdk() {
  const fs::path dir = IG_NPM_DIR;
  if (fs::exists(dir / "node_modules" / "openai" / "package.json")) return "";
  // Into a fresh directory first, so an interrupted install never looks complete.
  const fs::path tmp = dir.string() + ".tmp-" + std::to_string(::getpid());
  fs::remove_all(tmp);
  fs::create_directories(tmp);
  int rc = 0;
  const std::string out = test::run_command("npm install --prefix '" + tmp.string() +
                                                "' --no-audit --no-fund --loglevel=error openai@4 2>&1",
                                            &rc);
  if (rc != 0 || !fs::exists(tmp / "node_modules" / "openai" / "package.json")) {
    fs::remove_all(tmp);
    return "could not install the openai npm package (npm install openai@4, exit " + std::to_string(rc) +
           "); the e2e SDK test needs the npm registry once, after which " + dir.string() +
           " is reused:\n" + out;
  }
  std::error_code ec;
  fs::rename(tmp, dir, ec);  // another run may have finished first: then use its copy
  if (ec) fs::remove_all(tmp);
  return "";
}

TEST(OpenAiSdk, ChatCompletionsStreamingAndTypedErrors) {
  const std::string install_error = install_sdk();
  ASSERT_EQ(install_error, "");

  test::Backend backend;
  const auto acme = backend.tenant("acme");
  const auto no_tier = backend.tenant("medium-only", {"--tiers", "medium"});
  const auto one_rpm = backend.tenant("one-rpm", {"--requests-per-minute", "1"});
  test::ServerProcess server(backend.config(), {},
                             test::models_toml({{"toy", test::model_file("toy"), "small"}}));

  // The script's first check makes two requests that must fall in one rate-limit minute.
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::system_clock::now().time_since_epoch()).count() % 60000;
  if (ms > 55000) std::this_thread::sleep_for(std::chrono::milliseconds(60200 - ms));

  std::string node_path = test::run_command("command -v node");
  while (!node_path.empty() && std::isspace(static_cast<unsigned char>(node_path.back()))) node_path.pop_back();
  ASSERT_FALSE(node_path.empty()) << "node is not installed (it comes with npm)";

  const std::string dir = test::make_temp_dir("sdk");
  const std::string out_path = dir + "/out";
  test::Child node = test::Child::spawn({node_path, IG_SDK_SCRIPT},
                                        {{"IG_NPM_DIR", IG_NPM_DIR},
                                         {"IG_BASE_URL", "http://127.0.0.1:" + std::to_string(server.port()) + "/v1"},
                                         {"IG_KEY", acme.key},
                                         {"IG_KEY_NO_TIER", no_tier.key},
                                         {"IG_KEY_ONE_RPM", one_rpm.key},
                                         {"IG_MODEL", "toy"}},
                                        out_path);
  const auto code = node.wait(std::chrono::seconds(60));
  const std::string output = test::read_file(out_path);
  fs::remove_all(dir);
  std::printf("--- node %s ---\n%s", IG_SDK_SCRIPT, output.c_str());
  ASSERT_TRUE(code.has_value()) << "the SDK script did not finish in 60 s";
  EXPECT_EQ(*code, 0) << output;
  EXPECT_NE(output.find("all SDK checks passed"), std::string::npos);
}

}  // namespace
}  // namespace infergate
