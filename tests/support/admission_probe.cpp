// A test helper process: runs N concurrent admissions against one Redis for one tenant and
// prints how many were admitted and how many tokens they reserved. Several of these at once
// show that limits hold across instances.
//   admission_probe PORT TENANT COUNT TOKENS MONTH_QUOTA RPM [PREFETCH [WAVES]]   (-1 = unlimited;
//   PREFETCH 0 turns off admission ahead of demand, which is on by default; WAVES: the COUNT
//   admissions go in that many rounds of concurrent ones, default 1). Prints admitted=,
//   reserved=, errors= and ahead= (admissions served by reservations admitted ahead).
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <thread>

#include "infergate/gateway/admission.h"

using namespace infergate;

int main(int argc, char** argv) {
  if (argc < 7 || argc > 9) {
    std::fprintf(stderr, "usage: %s PORT TENANT COUNT TOKENS MONTH_QUOTA RPM [PREFETCH [WAVES]]\n", argv[0]);
    return 2;
  }
  infra::RedisConfig rc;
  rc.port = static_cast<std::uint16_t>(std::stoi(argv[1]));
  rc.command_timeout = infra::Millis(5000);
  const std::string tenant = argv[2];
  const int count = std::stoi(argv[3]);
  const std::int64_t tokens = std::stoll(argv[4]), quota = std::stoll(argv[5]),
                     rpm = std::stoll(argv[6]);

  boost::asio::io_context io(2);
  infra::MetricsRegistry metrics;
  infra::RedisClient redis(io, rc, metrics);
  redis.start();
  infra::AdmissionConfig ac;
  ac.redis_timeout = infra::Millis(5000);
  ac.prefetch = argc < 8 || std::string(argv[7]) != "0";
  const int waves = argc < 9 ? 1 : std::max(1, std::stoi(argv[8]));
  gateway::Admission admission(redis, ac, metrics);

  std::atomic<int> done{0}, admitted{0}, errors{0};
  std::atomic<std::int64_t> reserved{0};
  auto work = std::make_unique<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>>(io.get_executor());
  std::thread t1([&] { io.run(); }), t2([&] { io.run(); });
  while (!redis.connected()) std::this_thread::sleep_for(std::chrono::milliseconds(5));

  gateway::AdmissionRequest req;
  req.tenant_id = tenant;
  req.key_id = "probe";
  req.tokens = tokens;
  if (quota >= 0) req.tenant.tokens_per_month = quota;
  if (rpm >= 0) req.tenant.requests_per_minute = rpm;
  req.periods = {"2026-11-22", "2026-11", 4102444800000, 4102444800000};
  for (int i = 0; i < count; ++i) {
    if (i > 0 && i % std::max(1, count / waves) == 0) {
      while (done < i) std::this_thread::sleep_for(std::chrono::milliseconds(1));  // the wave before is done
    }
    boost::asio::co_spawn(
        io,
        [&]() -> boost::asio::awaitable<void> {
          gateway::AdmissionDecision d = co_await admission.admit(req);
          if (d.outcome == gateway::AdmissionOutcome::admitted) {
            ++admitted;
            reserved += req.tokens;
          } else if (d.outcome == gateway::AdmissionOutcome::redis_error) {
            ++errors;
          }
          ++done;
        },
        boost::asio::detached);
  }
  while (done < count) std::this_thread::sleep_for(std::chrono::milliseconds(2));
  admission.release_prefetched(io.get_executor());  // as serve does at shutdown
  for (int i = 0; i < 1000 && admission.pending() > 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(2));
  redis.stop();
  work.reset();
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  io.stop();
  t1.join();
  t2.join();
  const auto ahead = metrics.counter("infergate_admission_prefetched_total", "", {"result"}).with({"used"}).value();
  std::printf("admitted=%d reserved=%lld errors=%d ahead=%llu\n", admitted.load(),
              static_cast<long long>(reserved.load()), errors.load(), static_cast<unsigned long long>(ahead));
  return 0;
}
