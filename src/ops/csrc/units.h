// What one translation unit of the op library calls in another: the INT8 program (int8_program.cc) runs the
// INT8 units (conv3d_int8.cc) and the integer max-pool (maxpool3d.cc) without going through MindSpore.
#pragma once

#include <cstdint>

namespace conv3d {

// A unit's tensor types (codes as conv3d_int8_prepare's: 0 float32, 1 uint8, 2 int8; residual -1: none), its
// output channels and kernel size.
struct Int8UnitInfo {
  int in = 0, out = 0, res = -1;
  int64_t out_channels = 0;
  int64_t kernel[3] = {1, 1, 1};
};

// False for an unknown handle.
bool int8_unit_info(int64_t handle, Int8UnitInfo &info);

// Runs the unit of params[6] (params = int64[7]: stride(3), padding(3), handle) on x (shape x_shape: NCDHW clips
// for a float32 input, else NDHWC) into y (NDHWC, shape y_shape), adding `residual` (of y's shape; nullptr: none;
// == y: already in y, no copy). Throws std::exception with the reason.
void run_int8_unit(const int64_t *x_shape, const int64_t *y_shape, const int64_t *params, void *x, void *residual,
                   void *y);

// Max-pool of NDHWC integers (u8, or s8 when is_signed): shapes in / out [N, D, H, W, C], params = kernel(3),
// stride(3), padding(3).
void max_pool_ndhwc(bool is_signed, const int64_t *in, const int64_t *out, const int64_t *params, const void *x,
                    void *y);

}  // namespace conv3d
