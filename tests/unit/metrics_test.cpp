// Metrics registry: exact Prometheus text for each kind, label escaping, registration rules and
// lock-free recording from many threads.
#include "infergate/infra/metrics.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace infergate::infra {
namespace {

TEST(MetricsTest, CounterWithLabels) {
  MetricsRegistry reg;
  auto& requests = reg.counter("ig_requests_total", "Requests answered.", {"route", "status"});
  requests.with({"/v1/models", "200"}).inc(3);
  requests.with({"/v1/chat/completions", "429"}).inc();
  EXPECT_EQ(requests.with({"/v1/models", "200"}).value(), 3u);
  EXPECT_EQ(reg.render(),
            "# HELP ig_requests_total Requests answered.\n"
            "# TYPE ig_requests_total counter\n"
            "ig_requests_total{route=\"/v1/chat/completions\",status=\"429\"} 1\n"
            "ig_requests_total{route=\"/v1/models\",status=\"200\"} 3\n");
}

TEST(MetricsTest, FamilyWithoutSeriesRendersOnlyHelpAndType) {
  MetricsRegistry reg;
  reg.counter("ig_errors_total", "Errors.", {"kind"});
  EXPECT_EQ(reg.render(), "# HELP ig_errors_total Errors.\n# TYPE ig_errors_total counter\n");
}

TEST(MetricsTest, Gauge) {
  MetricsRegistry reg;
  auto& g = reg.gauge("ig_inflight", "Requests in flight.").with({});
  g.set(1.5);
  EXPECT_EQ(reg.render(),
            "# HELP ig_inflight Requests in flight.\n"
            "# TYPE ig_inflight gauge\n"
            "ig_inflight 1.5\n");
  g.add(2);
  EXPECT_EQ(g.value(), 3.5);
  g.add(-10);
  EXPECT_EQ(reg.render(),
            "# HELP ig_inflight Requests in flight.\n"
            "# TYPE ig_inflight gauge\n"
            "ig_inflight -6.5\n");
}

TEST(MetricsTest, GaugeValuesUseShortestExactText) {
  MetricsRegistry reg;
  auto& g = reg.gauge("g", "h").with({});
  auto line = [&] {
    std::string r = reg.render();
    return r.substr(r.rfind("\ng ") + 1);
  };
  g.set(0.1);
  EXPECT_EQ(line(), "g 0.1\n");
  g.set(42);
  EXPECT_EQ(line(), "g 42\n");
  g.set(0);
  EXPECT_EQ(line(), "g 0\n");
  g.set(1.0 / 3.0);
  EXPECT_EQ(line(), "g 0.3333333333333333\n");
  g.set(std::numeric_limits<double>::infinity());
  EXPECT_EQ(line(), "g +Inf\n");
  g.set(-std::numeric_limits<double>::infinity());
  EXPECT_EQ(line(), "g -Inf\n");
  g.set(std::nan(""));
  EXPECT_EQ(line(), "g NaN\n");
  g.set(1e20);
  EXPECT_EQ(line(), "g 1e+20\n");
}

TEST(MetricsTest, CallbackGaugeIsReadAtRenderTime) {
  MetricsRegistry reg;
  double queue = 7;
  reg.gauge_callback("ig_queue_depth", "Requests waiting.", [&] { return queue; });
  EXPECT_EQ(reg.render(),
            "# HELP ig_queue_depth Requests waiting.\n"
            "# TYPE ig_queue_depth gauge\n"
            "ig_queue_depth 7\n");
  queue = 0.25;
  EXPECT_EQ(reg.render(),
            "# HELP ig_queue_depth Requests waiting.\n"
            "# TYPE ig_queue_depth gauge\n"
            "ig_queue_depth 0.25\n");
}

TEST(MetricsTest, HistogramBucketsAreCumulative) {
  MetricsRegistry reg;
  auto& h = reg.histogram("ig_latency_seconds", "Latency.", {"route"}, {0.25, 0.5, 1})
                .with({"/v1/models"});
  for (double v : {0.125, 0.25, 0.75, 4.0})
    h.observe(v);  // 0.25 falls in le="0.25"
  EXPECT_EQ(h.count(), 4u);
  EXPECT_EQ(h.sum(), 5.125);
  EXPECT_EQ(h.cumulative(), (std::vector<std::uint64_t>{2, 2, 3, 4}));
  EXPECT_EQ(reg.render(),
            "# HELP ig_latency_seconds Latency.\n"
            "# TYPE ig_latency_seconds histogram\n"
            "ig_latency_seconds_bucket{route=\"/v1/models\",le=\"0.25\"} 2\n"
            "ig_latency_seconds_bucket{route=\"/v1/models\",le=\"0.5\"} 2\n"
            "ig_latency_seconds_bucket{route=\"/v1/models\",le=\"1\"} 3\n"
            "ig_latency_seconds_bucket{route=\"/v1/models\",le=\"+Inf\"} 4\n"
            "ig_latency_seconds_sum{route=\"/v1/models\"} 5.125\n"
            "ig_latency_seconds_count{route=\"/v1/models\"} 4\n");
}

TEST(MetricsTest, HistogramWithoutLabels) {
  MetricsRegistry reg;
  auto& h = reg.histogram("h", "H.", {}, {1, 2}).with({});
  h.observe(1.5);
  EXPECT_EQ(reg.render(),
            "# HELP h H.\n"
            "# TYPE h histogram\n"
            "h_bucket{le=\"1\"} 0\n"
            "h_bucket{le=\"2\"} 1\n"
            "h_bucket{le=\"+Inf\"} 1\n"
            "h_sum 1.5\n"
            "h_count 1\n");
}

TEST(MetricsTest, HistogramWithUnsortedBoundsThrows) {
  MetricsRegistry reg;
  // Refused when the family is registered, not at its first use.
  EXPECT_THROW(reg.histogram("h", "H.", {}, {1, 0.5}), std::invalid_argument);
  EXPECT_THROW(Histogram({3, 2, 1}), std::invalid_argument);
}

TEST(MetricsTest, DefaultLatencyBuckets) {
  auto b = MetricsRegistry::latency_buckets();
  ASSERT_EQ(b.size(), 18u);
  EXPECT_EQ(b.front(), 0.0001);
  EXPECT_EQ(b.back(), 60);
  EXPECT_TRUE(std::is_sorted(b.begin(), b.end()));
}

TEST(MetricsTest, WholeRegistryIsSortedByName) {
  MetricsRegistry reg;
  reg.gauge_callback("c_cb", "Callback.", [] { return 3.0; });
  reg.counter("a_total", "Counter.").with({}).inc(5);
  reg.histogram("d_hist", "Histogram.", {}, {1}).with({}).observe(0.5);
  reg.gauge("b_gauge", "Gauge.", {"pool"}).with({"main"}).set(2);
  EXPECT_EQ(reg.render(),
            "# HELP a_total Counter.\n"
            "# TYPE a_total counter\n"
            "a_total 5\n"
            "# HELP b_gauge Gauge.\n"
            "# TYPE b_gauge gauge\n"
            "b_gauge{pool=\"main\"} 2\n"
            "# HELP c_cb Callback.\n"
            "# TYPE c_cb gauge\n"
            "c_cb 3\n"
            "# HELP d_hist Histogram.\n"
            "# TYPE d_hist histogram\n"
            "d_hist_bucket{le=\"1\"} 1\n"
            "d_hist_bucket{le=\"+Inf\"} 1\n"
            "d_hist_sum 0.5\n"
            "d_hist_count 1\n");
}

TEST(MetricsTest, LabelValuesAreEscaped) {
  EXPECT_EQ(escape_label_value("plain"), "plain");
  EXPECT_EQ(escape_label_value("a\\b"), "a\\\\b");
  EXPECT_EQ(escape_label_value("say \"hi\""), "say \\\"hi\\\"");
  EXPECT_EQ(escape_label_value("two\nlines"), "two\\nlines");
  EXPECT_EQ(escape_label_value(""), "");

  MetricsRegistry reg;
  reg.counter("c", "C.", {"v"}).with({"a\\b\"c\nd"}).inc();
  EXPECT_EQ(reg.render(), "# HELP c C.\n# TYPE c counter\nc{v=\"a\\\\b\\\"c\\nd\"} 1\n");
}

TEST(MetricsTest, WrongLabelCountThrows) {
  MetricsRegistry reg;
  auto& c = reg.counter("c", "C.", {"a", "b"});
  EXPECT_THROW(c.with({"x"}), std::invalid_argument);
  EXPECT_THROW(c.with({"x", "y", "z"}), std::invalid_argument);
  EXPECT_THROW(c.with({}), std::invalid_argument);
  EXPECT_NO_THROW(c.with({"x", "y"}));
  auto& g = reg.gauge("g", "G.");
  EXPECT_THROW(g.with({"x"}), std::invalid_argument);
}

TEST(MetricsTest, SameSeriesIsTheSameObject) {
  MetricsRegistry reg;
  auto& c = reg.counter("c", "C.", {"a"});
  EXPECT_EQ(&c.with({"x"}), &c.with({"x"}));
  EXPECT_NE(&c.with({"x"}), &c.with({"y"}));
}

TEST(MetricsTest, SameNameTwiceReturnsTheSameFamily) {
  MetricsRegistry reg;
  auto& a = reg.counter("c", "C.", {"l"});
  auto& b = reg.counter("c", "C.", {"l"});
  EXPECT_EQ(&a, &b);
  a.with({"x"}).inc();
  EXPECT_EQ(b.with({"x"}).value(), 1u);
  EXPECT_EQ(&reg.gauge("g", "G."), &reg.gauge("g", "G."));
  EXPECT_EQ(&reg.histogram("h", "H.", {}), &reg.histogram("h", "H.", {}));
}

TEST(MetricsTest, OneNameAsTwoKindsThrows) {
  MetricsRegistry reg;
  reg.counter("m", "M.");
  EXPECT_THROW(reg.gauge("m", "M."), std::invalid_argument);
  EXPECT_THROW(reg.histogram("m", "M.", {}), std::invalid_argument);
  EXPECT_THROW(reg.gauge_callback("m", "M.", [] { return 1.0; }), std::invalid_argument);
  reg.gauge_callback("cb", "CB.", [] { return 1.0; });
  EXPECT_THROW(reg.gauge("cb", "CB."), std::invalid_argument);
  EXPECT_THROW(reg.counter("cb", "CB."), std::invalid_argument);
  // The original registrations are untouched.
  EXPECT_EQ(reg.render(),
            "# HELP cb CB.\n# TYPE cb gauge\ncb 1\n"
            "# HELP m M.\n# TYPE m counter\n");
}

// The text format requires backslash and newline in HELP to be escaped (as \\ and \n);
// otherwise a help text with a newline breaks the whole exposition.
TEST(MetricsTest, HelpTextIsEscaped) {
  MetricsRegistry reg;
  reg.counter("c", "first line\nsecond \\ line");
  EXPECT_EQ(reg.render(), "# HELP c first line\\nsecond \\\\ line\n# TYPE c counter\n");
}

TEST(MetricsTest, ConcurrentIncrementsSumExactly) {
  MetricsRegistry reg;
  auto& family = reg.counter("c", "C.", {"k"});
  auto& gauge = reg.gauge("g", "G.").with({});
  auto& hist = reg.histogram("h", "H.", {}, {0.5}).with({});
  constexpr int kThreads = 4;
  constexpr int kPerThread = 100000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      auto& shared = family.with({"shared"});
      auto& own = family.with({"t" + std::to_string(t)});
      for (int i = 0; i < kPerThread; ++i) {
        shared.inc();
        own.inc(2);
        gauge.add(1);
        hist.observe(i % 2 == 0 ? 0.25 : 1.0);
      }
    });
  }
  for (auto& th : threads)
    th.join();
  EXPECT_EQ(family.with({"shared"}).value(), std::uint64_t{kThreads} * kPerThread);
  for (int t = 0; t < kThreads; ++t)
    EXPECT_EQ(family.with({"t" + std::to_string(t)}).value(), 2u * kPerThread);
  EXPECT_EQ(gauge.value(), double{kThreads} * kPerThread);
  EXPECT_EQ(hist.count(), std::uint64_t{kThreads} * kPerThread);
  EXPECT_EQ(hist.cumulative(),
            (std::vector<std::uint64_t>{kThreads * kPerThread / 2, kThreads * kPerThread}));
  EXPECT_EQ(hist.sum(), kThreads * (kPerThread / 2) * (0.25 + 1.0));
}

}  // namespace
}  // namespace infergate::infra
