// A small Prometheus metrics registry. Families are created once (at wiring time) and shared;
// recording a value is lock-free on an existing series. Rendering follows the Prometheus text
// exposition format 0.0.4. Thread-safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <vector>

namespace infergate::infra {

using Labels = std::vector<std::string>;  // values, in the order of the family's label names

class Counter {
 public:
  void inc(std::uint64_t n = 1) { v_.fetch_add(n, std::memory_order_relaxed); }
  std::uint64_t value() const { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::uint64_t> v_{0};
};

class Gauge {
 public:
  void set(double v) { bits_.store(to_bits(v), std::memory_order_relaxed); }
  void add(double d);
  double value() const { return from_bits(bits_.load(std::memory_order_relaxed)); }

 private:
  static std::uint64_t to_bits(double v);
  static double from_bits(std::uint64_t b);
  std::atomic<std::uint64_t> bits_{0};
};

class Histogram {
 public:
  explicit Histogram(const std::vector<double>& bounds);
  void observe(double v);
  // Cumulative counts per bound, then +Inf.
  std::vector<std::uint64_t> cumulative() const;
  double sum() const;
  std::uint64_t count() const { return count_.load(std::memory_order_relaxed); }
  const std::vector<double>& bounds() const { return bounds_; }

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<std::uint64_t>[]> buckets_;  // bounds_.size() + 1 (the +Inf one)
  std::atomic<std::uint64_t> count_{0};
  std::atomic<std::uint64_t> sum_bits_{0};
};

template <class Metric>
class Family {
 public:
  // The series for these label values, created on first use. The reference stays valid for the
  // registry's lifetime: callers on hot paths should look it up once and keep it.
  Metric& with(const Labels& values);

 private:
  friend class MetricsRegistry;
  Family(std::string name, std::string help, std::vector<std::string> label_names,
         std::function<std::unique_ptr<Metric>()> make)
      : name_(std::move(name)),
        help_(std::move(help)),
        label_names_(std::move(label_names)),
        make_(std::move(make)) {}

  std::string name_, help_;
  std::vector<std::string> label_names_;
  std::function<std::unique_ptr<Metric>()> make_;
  mutable std::shared_mutex mu_;
  std::map<Labels, std::unique_ptr<Metric>> series_;
};

class MetricsRegistry {
 public:
  // Default latency buckets in seconds: 100µs .. 60s.
  static std::vector<double> latency_buckets();

  // Creating the same name twice returns the existing family (the kinds must agree).
  Family<Counter>& counter(const std::string& name, const std::string& help,
                           std::vector<std::string> label_names = {});
  Family<Gauge>& gauge(const std::string& name, const std::string& help,
                       std::vector<std::string> label_names = {});
  Family<Histogram>& histogram(const std::string& name, const std::string& help,
                               std::vector<std::string> label_names,
                               std::vector<double> bounds = latency_buckets());
  // A gauge whose value is read when the registry is rendered (queue sizes, pool states).
  // Returns a token for remove_callback: an object whose state the callback reads removes it
  // in its destructor (a later registration under the same name replaces it and is kept).
  std::uint64_t gauge_callback(const std::string& name, const std::string& help,
                               std::function<double()> read);
  void remove_callback(const std::string& name, std::uint64_t token);

  // Prometheus text format.
  std::string render() const;

 private:
  struct Entry {
    std::string kind;  // counter | gauge | histogram | callback
    std::unique_ptr<Family<Counter>> counter;
    std::unique_ptr<Family<Gauge>> gauge;
    std::unique_ptr<Family<Histogram>> histogram;
    std::string help;
    std::function<double()> read;
    std::uint64_t token = 0;
  };
  Entry& entry(const std::string& name, const std::string& kind);

  mutable std::mutex mu_;
  std::map<std::string, Entry> entries_;
  std::uint64_t next_token_ = 0;
};

// Escapes a label value for the text format (backslash, double quote, newline).
std::string escape_label_value(const std::string& v);

}  // namespace infergate::infra
