// One copy of every kernel, for the vector width PK_W and the name suffix PK_SUFFIX that the
// including file defines (Sources/CKernelsAVX2/kernels.c, Sources/CKernelsAVX512/kernels.c).
#include "../include/pissa_kernels.h"
#include "vector.h"
#include "block_dot.h"

const pk_kernels PK_FN(pk_kernels) = {
    .name = PK_STR(PK_SUFFIX),
    .block_dot = PK_FN(block_dot),
};
