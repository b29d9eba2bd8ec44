// The HTTPS listener: a self-signed certificate made here with the openssl command, the same API
// over TLS (a streamed completion through curl, verified against that certificate), and clear
// startup errors for a certificate or key that cannot be used.
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>

#include "completions_support.h"

namespace infergate::test {
namespace {

std::string run_command(const std::string& cmd, int* rc) {
  std::string out;
  FILE* p = ::popen((cmd + " 2>&1").c_str(), "r");
  if (p == nullptr) {
    *rc = -1;
    return out;
  }
  char buf[4096];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  *rc = ::pclose(p);
  return out;
}

struct Certificate {
  std::string cert, key;
};

Certificate self_signed(const std::string& dir) {
  Certificate c{dir + "/server.crt", dir + "/server.key"};
  int rc = 0;
  const std::string out = run_command("openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=localhost "
                                      "-addext subjectAltName=IP:127.0.0.1 -keyout " + c.key + " -out " + c.cert, &rc);
  if (rc != 0) throw std::runtime_error("openssl failed: " + out);
  return c;
}

TEST(Tls, TheApiAnswersOverHttpsWithTheConfiguredCertificate) {
  const std::string dir = make_temp_dir("tls");
  const Certificate c = self_signed(dir);
  Backend b;
  const Tenant t = b.tenant("tls");
  const int tls_port = free_port();
  ServerProcess server(b.config({{"server", {{"tls_enabled", "true"},
                                             {"tls_port", std::to_string(tls_port)},
                                             {"tls_cert_file", "\"" + c.cert + "\""},
                                             {"tls_key_file", "\"" + c.key + "\""}}}}),
                       {}, models_toml({{"toy", model_file("toy"), "small"}}));
  EXPECT_TRUE(server.wait_for_log("\"tls_port\":" + std::to_string(tls_port), std::chrono::seconds(5)));
  const std::string url = "https://127.0.0.1:" + std::to_string(tls_port) + "/v1/chat/completions";
  const std::string body =
      R"({"model":"toy","messages":[{"role":"user","content":"hello"}],"max_tokens":3,"stream":true,)"
      R"("stream_options":{"include_usage":true}})";
  int rc = 0;
  const std::string out = run_command("curl -sS --fail-with-body --cacert " + c.cert + " " + url +
                                          " -H 'Authorization: Bearer " + t.key + "' -H 'Content-Type: application/json' -d '" +
                                          body + "'",
                                      &rc);
  ASSERT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("\"completion_tokens\":3"), std::string::npos) << out;
  EXPECT_NE(out.find("data: [DONE]"), std::string::npos) << out;
  EXPECT_EQ(b.wait_only_ledger_row().status, "completed");
  // Without trusting the certificate, curl refuses it: the listener really speaks TLS with it.
  run_command("curl -sS https://127.0.0.1:" + std::to_string(tls_port) + "/healthz", &rc);
  EXPECT_NE(rc, 0);
  // Plain HTTP on the TLS port gets no answer; the plain port still answers.
  EXPECT_EQ(http_request(server.port(), "GET", "/healthz").status, 200);
}

TEST(Tls, AnUnusableCertificateOrKeyStopsStartupNamingTheFile) {
  const std::string dir = make_temp_dir("tls-bad");
  const Certificate c = self_signed(dir);
  { std::ofstream(dir + "/garbage.pem") << "not a certificate\n"; }
  // The server refuses to start (exit 1) and says which file it could not use.
  auto start_error = [&](const std::string& cert, const std::string& key) -> std::string {
    ConfigValues cfg = base_config({{"server", {{"tls_enabled", "true"},
                                                {"tls_port", "0"},
                                                {"tls_cert_file", "\"" + cert + "\""},
                                                {"tls_key_file", "\"" + key + "\""}}}});
    try {
      ServerProcess s(cfg);
    } catch (const std::runtime_error& e) {
      return e.what();
    }
    return "it started";
  };
  const std::string bad_cert = start_error(dir + "/garbage.pem", c.key);
  EXPECT_NE(bad_cert.find("exited with 1"), std::string::npos) << bad_cert;
  EXPECT_NE(bad_cert.find("server.tls_cert_file '" + dir + "/garbage.pem'"), std::string::npos) << bad_cert;
  const std::string bad_key = start_error(c.cert, dir + "/missing.key");
  EXPECT_NE(bad_key.find("exited with 1"), std::string::npos) << bad_key;
  EXPECT_NE(bad_key.find("server.tls_key_file '" + dir + "/missing.key'"), std::string::npos) << bad_key;
}

}  // namespace
}  // namespace infergate::test
