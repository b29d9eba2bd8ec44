#define IG_SIMD_NS avx512vnni
#include "matmul_simd.inc"
