#include <thread>

#include "infergate/kernels/devices.h"

namespace infergate::kernels {

std::string CpuFeatures::best_isa() const {
  if (avx512f && avx512bw && avx512vl) return "avx512";
  if (avx2 && fma) return "avx2";
  return "scalar";
}

CpuFeatures detect_cpu() {
  CpuFeatures f;
  __builtin_cpu_init();
  f.avx2 = __builtin_cpu_supports("avx2");
  f.fma = __builtin_cpu_supports("fma");
  f.f16c = false;
#if defined(__x86_64__)
  {
    unsigned eax, ebx, ecx, edx;
    __asm__ volatile("cpuid" : "=a"(eax), "=b"(ebx), "=c"(ecx), "=d"(edx) : "a"(1), "c"(0));
    f.f16c = (ecx >> 29) & 1u;
  }
#endif
  f.avx512f = __builtin_cpu_supports("avx512f");
  f.avx512bw = __builtin_cpu_supports("avx512bw");
  f.avx512vl = __builtin_cpu_supports("avx512vl");
  f.avx512vnni = __builtin_cpu_supports("avx512vnni");
  f.hardware_threads = std::max(1u, std::thread::hardware_concurrency());
  return f;
}

}  // namespace infergate::kernels
