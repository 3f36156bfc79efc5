// Backward-weights for few-input-channel convolutions (the stem), see stem_bwd_weights.cc.
#pragma once

#include <cstdint>

namespace conv3d {

// Shapes are 5-D (x, dy, w); p is stride(3), padding(3), dilation(3). True when the kernel below
// handles this convolution on this CPU (AVX2 + FMA, <= 4 input channels, output channels a multiple
// of 16, kernel width <= 16, no dilation).
bool stem_bwd_weights_applies(const int64_t *x, const int64_t *dy, const int64_t *w, const int64_t *p);

// dw (plain OIDHW) = the weight gradient of the convolution of plain NCDHW x giving gradient dy.
void stem_bwd_weights(const int64_t *x_shape, const int64_t *dy_shape, const int64_t *w_shape, const int64_t *p,
                      const float *x, const float *dy, float *dw);

}  // namespace conv3d
