// Shared by the gpu-labelled tests: a fixture that skips, saying why, when no CUDA device can be
// used, and small helpers to move vectors to and from the device.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <cstring>
#include <random>
#include <vector>

#include "infergate/kernels/cuda/runtime.h"
#include "infergate/kernels/devices.h"

namespace infergate::gpu_testing {

namespace kg = kernels::cuda;

class GpuTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto inv = kernels::detect_gpus();
    if (inv.devices.empty()) GTEST_SKIP() << "no CUDA device: " << (inv.note.empty() ? "none found" : inv.note);
    kg::set_device(inv.devices.front().index);
    stream_ = std::make_unique<kg::StreamOwner>();
  }
  kg::Stream stream() const { return stream_->get(); }

  template <class T>
  kg::DeviceBuffer to_device(const std::vector<T>& v) {
    kg::DeviceBuffer b(std::max<std::size_t>(1, v.size() * sizeof(T)));
    kg::copy_to_device(b.data(), v.data(), v.size() * sizeof(T), stream());
    kg::synchronize(stream());
    return b;
  }
  template <class T>
  std::vector<T> to_host(const kg::DeviceBuffer& b, std::size_t n) {
    std::vector<T> v(n);
    kg::copy_to_host(v.data(), b.data(), n * sizeof(T), stream());
    kg::synchronize(stream());
    return v;
  }

 private:
  std::unique_ptr<kg::StreamOwner> stream_;
};

inline std::vector<float> random_floats(std::size_t n, std::uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-scale, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

// ||got - want|| / ||want|| over the whole vector.
template <class A, class B>
double relative_l2(const A& got, const B& want) {
  double err = 0, norm = 0;
  for (std::size_t i = 0; i < want.size(); ++i) {
    const double d = static_cast<double>(got[i]) - static_cast<double>(want[i]);
    err += d * d;
    norm += static_cast<double>(want[i]) * static_cast<double>(want[i]);
  }
  return norm == 0 ? std::sqrt(err) : std::sqrt(err / norm);
}

inline double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  double m = 0;
  for (std::size_t i = 0; i < a.size(); ++i) m = std::max(m, std::fabs(static_cast<double>(a[i]) - b[i]));
  return m;
}

}  // namespace infergate::gpu_testing
