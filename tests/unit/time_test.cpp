// RFC 3339 timestamps with milliseconds, in UTC.
#include "infergate/infra/time.h"

#include <chrono>

#include <gtest/gtest.h>

namespace infergate::infra {
namespace {

using std::chrono::system_clock;

system_clock::time_point at(std::chrono::nanoseconds since_epoch) {
  return system_clock::time_point(std::chrono::duration_cast<system_clock::duration>(since_epoch));
}

TEST(TimeTest, Epoch) {
  EXPECT_EQ(format_rfc3339_millis(system_clock::time_point{}), "1970-01-01T00:00:00.000Z");
}

TEST(TimeTest, KnownInstantWithMillis) {
  // 2026-11-22T01:02:03Z is 1795309323 seconds after the epoch.
  using namespace std::chrono_literals;
  EXPECT_EQ(format_rfc3339_millis(at(1795309323s + 456ms)), "2026-11-22T01:02:03.456Z");
  EXPECT_EQ(format_rfc3339_millis(at(1795309323s + 7ms)), "2026-11-22T01:02:03.007Z");
  // A leap day, the last millisecond of it.
  EXPECT_EQ(format_rfc3339_millis(at(951868799s + 999ms)), "2000-02-29T23:59:59.999Z");
}

TEST(TimeTest, SubMillisecondsAreTruncated) {
  using namespace std::chrono_literals;
  EXPECT_EQ(format_rfc3339_millis(at(1795309323s + 456999us)), "2026-11-22T01:02:03.456Z");
  EXPECT_EQ(format_rfc3339_millis(at(999999ns)), "1970-01-01T00:00:00.000Z");
}

TEST(TimeTest, BeforeTheEpoch) {
  using namespace std::chrono_literals;
  EXPECT_EQ(format_rfc3339_millis(at(-1ms)), "1969-12-31T23:59:59.999Z");
  EXPECT_EQ(format_rfc3339_millis(at(-1000ms)), "1969-12-31T23:59:59.000Z");
  EXPECT_EQ(format_rfc3339_millis(at(-1500ms)), "1969-12-31T23:59:58.500Z");
  // 1960-03-04T05:06:07Z is -310157633 seconds.
  EXPECT_EQ(format_rfc3339_millis(at(-310157633s + 250ms)), "1960-03-04T05:06:07.250Z");
  EXPECT_EQ(format_rfc3339_millis(at(-310157633s - 250ms)), "1960-03-04T05:06:06.750Z");
}

// Truncation must go towards the past on both sides of the epoch, as it does after it: the
// instant 1 ns before 1970 is in the millisecond 23:59:59.999, not in 00:00:00.000.
TEST(TimeTest, SubMillisecondsBeforeTheEpochAreTruncatedTowardsThePast) {
  using namespace std::chrono_literals;
  EXPECT_EQ(format_rfc3339_millis(at(-1us)), "1969-12-31T23:59:59.999Z");
  EXPECT_EQ(format_rfc3339_millis(at(-1000ms - 500us)), "1969-12-31T23:59:58.999Z");
}

}  // namespace
}  // namespace infergate::infra
