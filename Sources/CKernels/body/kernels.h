// One copy of every kernel, for the vector width PK_W and the name suffix PK_SUFFIX that the
// including file defines (Sources/CKernelsAVX2/kernels.c, Sources/CKernelsAVX512/kernels.c).
#include "../include/pissa_kernels.h"
#include "vector.h"
#include "block_dot.h"
#include "elementwise.h"
#include "skinny.h"
#include "nf4.h"

const pk_kernels PK_FN(pk_kernels) = {
    .name = PK_STR(PK_SUFFIX),
    .block_dot = PK_FN(block_dot),
    .rmsnorm_forward = PK_FN(rmsnorm_forward),
    .rmsnorm_backward = PK_FN(rmsnorm_backward),
    .rmsnorm_backward_weight = PK_FN(rmsnorm_backward_weight),
    .swiglu_forward = PK_FN(swiglu_forward),
    .swiglu_backward = PK_FN(swiglu_backward),
    .geglu_forward = PK_FN(geglu_forward),
    .geglu_backward = PK_FN(geglu_backward),
    .rotary = PK_FN(rotary),
    .softmax_row = PK_FN(softmax_row),
    .softmax_backward_row = PK_FN(softmax_backward_row),
    .online_softmax_tile = PK_FN(online_softmax_tile),
    .skinny_panel_nn = PK_FN(skinny_panel_nn),
    .skinny_panel_tn = PK_FN(skinny_panel_tn),
    .nf4_dequantize = PK_FN(nf4_dequantize),
};
