#include "infergate/infra/metrics.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <sstream>
#include <stdexcept>

namespace infergate::infra {
namespace {

std::string format_double(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (v == std::floor(v) && std::fabs(v) < 1e15) {
    return std::to_string(static_cast<long long>(v));
  }
  char buf[64];
  for (int precision = 1; precision <= 17; ++precision) {  // shortest text that round-trips
    std::snprintf(buf, sizeof buf, "%.*g", precision, v);
    if (std::strtod(buf, nullptr) == v) break;
  }
  return buf;
}

std::string label_block(const std::vector<std::string>& names, const Labels& values,
                        const std::string& extra_name = {}, const std::string& extra_value = {}) {
  if (names.empty() && extra_name.empty()) return "";
  std::string out = "{";
  bool first = true;
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (!first) out += ',';
    first = false;
    out += names[i] + "=\"" + escape_label_value(values[i]) + "\"";
  }
  if (!extra_name.empty()) {
    if (!first) out += ',';
    out += extra_name + "=\"" + extra_value + "\"";
  }
  return out + "}";
}

void add_double(std::atomic<std::uint64_t>& bits, double d) {
  std::uint64_t old = bits.load(std::memory_order_relaxed);
  for (;;) {
    double cur;
    std::memcpy(&cur, &old, sizeof cur);
    double next = cur + d;
    std::uint64_t nb;
    std::memcpy(&nb, &next, sizeof nb);
    if (bits.compare_exchange_weak(old, nb, std::memory_order_relaxed)) return;
  }
}

// HELP lines escape backslash and newline (but not quotes).
std::string escape_help(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace

std::string escape_label_value(const std::string& v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::uint64_t Gauge::to_bits(double v) {
  std::uint64_t b;
  std::memcpy(&b, &v, sizeof b);
  return b;
}
double Gauge::from_bits(std::uint64_t b) {
  double v;
  std::memcpy(&v, &b, sizeof v);
  return v;
}
void Gauge::add(double d) { add_double(bits_, d); }

Histogram::Histogram(const std::vector<double>& bounds) : bounds_(bounds) {
  if (!std::is_sorted(bounds_.begin(), bounds_.end()))
    throw std::invalid_argument("histogram bounds must be sorted");
  buckets_ = std::make_unique<std::atomic<std::uint64_t>[]>(bounds_.size() + 1);
  for (std::size_t i = 0; i <= bounds_.size(); ++i) buckets_[i].store(0);
}

void Histogram::observe(double v) {
  auto it = std::lower_bound(bounds_.begin(), bounds_.end(), v);  // first bound >= v (le)
  buckets_[static_cast<std::size_t>(it - bounds_.begin())].fetch_add(1, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
  add_double(sum_bits_, v);
}

std::vector<std::uint64_t> Histogram::cumulative() const {
  std::vector<std::uint64_t> out(bounds_.size() + 1);
  std::uint64_t acc = 0;
  for (std::size_t i = 0; i <= bounds_.size(); ++i) {
    acc += buckets_[i].load(std::memory_order_relaxed);
    out[i] = acc;
  }
  return out;
}

double Histogram::sum() const {
  std::uint64_t b = sum_bits_.load(std::memory_order_relaxed);
  double v;
  std::memcpy(&v, &b, sizeof v);
  return v;
}

template <class Metric>
Metric& Family<Metric>::with(const Labels& values) {
  if (values.size() != label_names_.size())
    throw std::invalid_argument("metric " + name_ + ": expected " +
                                std::to_string(label_names_.size()) + " label values");
  {
    std::shared_lock lock(mu_);
    auto it = series_.find(values);
    if (it != series_.end()) return *it->second;
  }
  std::unique_lock lock(mu_);
  auto& slot = series_[values];
  if (!slot) slot = make_();
  return *slot;
}

template class Family<Counter>;
template class Family<Gauge>;
template class Family<Histogram>;

std::vector<double> MetricsRegistry::latency_buckets() {
  return {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
          0.1,    0.25,    0.5,    1,     2.5,    5,     10,   30,    60};
}

MetricsRegistry::Entry& MetricsRegistry::entry(const std::string& name, const std::string& kind) {
  auto& e = entries_[name];
  if (e.kind.empty()) {
    e.kind = kind;
  } else if (e.kind != kind) {
    throw std::invalid_argument("metric " + name + " registered as " + e.kind + " and " + kind);
  }
  return e;
}

Family<Counter>& MetricsRegistry::counter(const std::string& name, const std::string& help,
                                          std::vector<std::string> label_names) {
  std::lock_guard lock(mu_);
  auto& e = entry(name, "counter");
  if (!e.counter) {
    e.help = help;
    e.counter.reset(new Family<Counter>(name, help, std::move(label_names),
                                        [] { return std::make_unique<Counter>(); }));
  }
  return *e.counter;
}

Family<Gauge>& MetricsRegistry::gauge(const std::string& name, const std::string& help,
                                      std::vector<std::string> label_names) {
  std::lock_guard lock(mu_);
  auto& e = entry(name, "gauge");
  if (!e.gauge) {
    e.help = help;
    e.gauge.reset(new Family<Gauge>(name, help, std::move(label_names),
                                    [] { return std::make_unique<Gauge>(); }));
  }
  return *e.gauge;
}

Family<Histogram>& MetricsRegistry::histogram(const std::string& name, const std::string& help,
                                              std::vector<std::string> label_names,
                                              std::vector<double> bounds) {
  if (!std::is_sorted(bounds.begin(), bounds.end()))
    throw std::invalid_argument("metric " + name + ": histogram bounds must be sorted");
  std::lock_guard lock(mu_);
  auto& e = entry(name, "histogram");
  if (!e.histogram) {
    e.help = help;
    e.histogram.reset(new Family<Histogram>(
        name, help, std::move(label_names),
        [bounds = std::move(bounds)] { return std::make_unique<Histogram>(bounds); }));
  }
  return *e.histogram;
}

std::uint64_t MetricsRegistry::gauge_callback(const std::string& name, const std::string& help,
                                              std::function<double()> read) {
  std::lock_guard lock(mu_);
  auto& e = entry(name, "callback");
  e.help = help;
  e.read = std::move(read);
  e.token = ++next_token_;
  return e.token;
}

void MetricsRegistry::remove_callback(const std::string& name, std::uint64_t token) {
  std::lock_guard lock(mu_);
  auto it = entries_.find(name);
  if (it != entries_.end() && it->second.kind == "callback" && it->second.token == token)
    entries_.erase(it);
}

std::string MetricsRegistry::render() const {
  std::ostringstream out;
  std::lock_guard lock(mu_);
  for (const auto& [name, e] : entries_) {
    const std::string type = e.kind == "callback" ? "gauge" : e.kind;
    out << "# HELP " << name << ' ' << escape_help(e.help) << '\n'
        << "# TYPE " << name << ' ' << type << '\n';
    if (e.kind == "callback") {
      out << name << ' ' << format_double(e.read ? e.read() : 0) << '\n';
    } else if (e.counter) {
      std::shared_lock l(e.counter->mu_);
      for (const auto& [labels, c] : e.counter->series_)
        out << name << label_block(e.counter->label_names_, labels) << ' ' << c->value() << '\n';
    } else if (e.gauge) {
      std::shared_lock l(e.gauge->mu_);
      for (const auto& [labels, g] : e.gauge->series_)
        out << name << label_block(e.gauge->label_names_, labels) << ' '
            << format_double(g->value()) << '\n';
    } else if (e.histogram) {
      std::shared_lock l(e.histogram->mu_);
      const auto& names = e.histogram->label_names_;
      for (const auto& [labels, h] : e.histogram->series_) {
        auto cum = h->cumulative();
        const auto& b = h->bounds();
        for (std::size_t i = 0; i < b.size(); ++i)
          out << name << "_bucket" << label_block(names, labels, "le", format_double(b[i])) << ' '
              << cum[i] << '\n';
        out << name << "_bucket" << label_block(names, labels, "le", "+Inf") << ' ' << cum.back()
            << '\n';
        out << name << "_sum" << label_block(names, labels) << ' ' << format_double(h->sum())
            << '\n';
        out << name << "_count" << label_block(names, labels) << ' ' << cum.back() << '\n';
      }
    }
  }
  return out.str();
}

}  // namespace infergate::infra
