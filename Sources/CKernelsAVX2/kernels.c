// The kernels for x86-64-v3 (this target is compiled with -march=x86-64-v3): 8 floats per vector.
#define PK_W 8
#define PK_SUFFIX avx2
#include "../CKernels/body/kernels.h"
