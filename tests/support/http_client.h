// A deliberately plain HTTP/1.1 client on blocking sockets, for tests that need control over
// every byte (partial requests, oversized headers, keep-alive, raw malformed input).
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <string>

namespace infergate::test {

struct HttpResponse {
  int status = 0;
  std::map<std::string, std::string> headers;  // names lowercased
  std::string body;
  std::string header(const std::string& name) const;
};

class Connection {
 public:
  explicit Connection(int port);  // throws if the connect fails
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  void send(const std::string& bytes);
  // Reads one response (Content-Length or until close). nullopt on close/timeout before any.
  std::optional<HttpResponse> read_response(
      std::chrono::milliseconds timeout = std::chrono::milliseconds(5000));
  // True if the server closed the connection (EOF) within the timeout.
  bool wait_closed(std::chrono::milliseconds timeout);
  // Every byte that arrives until none has for `quiet` (or the connection closes): the wire as
  // sent, for checks that a parser would hide.
  std::string read_raw(std::chrono::milliseconds quiet);

 private:
  bool fill(std::chrono::steady_clock::time_point deadline);
  int fd_ = -1;
  std::string buf_;
};

// One request on a fresh connection. Throws if nothing comes back.
HttpResponse http_request(int port, const std::string& method, const std::string& path,
                          const std::string& body = "",
                          const std::map<std::string, std::string>& headers = {});

// True if a TCP connect to the port succeeds.
bool can_connect(int port);

}  // namespace infergate::test
