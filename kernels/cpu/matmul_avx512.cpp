#define IG_SIMD_NS avx512
#include "matmul_simd.inc"
