#define IG_SIMD_NS avx2
#include "matmul_simd.inc"
