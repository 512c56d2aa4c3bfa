// The kernels for x86-64-v4 (this target is compiled with -march=x86-64-v4): 16 floats per vector.
// Only reached through pk_kernels_for(PK_LEVEL_AVX512), which checks the CPU first.
#define PK_W 16
#define PK_SUFFIX avx512
#include "../CKernels/body/kernels.h"
