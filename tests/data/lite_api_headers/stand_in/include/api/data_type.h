// Stand-in for MindSpore Lite's include/api/data_type.h (compile checks only): the subset of
// declarations ascend310_infer uses, each with the real header's spelling and value (see README.md).
#ifndef RESNET3D_STAND_IN_INCLUDE_API_DATA_TYPE_H_
#define RESNET3D_STAND_IN_INCLUDE_API_DATA_TYPE_H_

#include <cstdint>

namespace mindspore {
enum class DataType : int {
  kTypeUnknown = 0,
  kNumberTypeFloat16 = 42,
  kNumberTypeFloat32 = 43,
};
}  // namespace mindspore

#endif  // RESNET3D_STAND_IN_INCLUDE_API_DATA_TYPE_H_
