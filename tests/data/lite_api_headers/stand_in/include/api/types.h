// Stand-in for MindSpore Lite's include/api/types.h (compile checks only): the subset of
// declarations ascend310_infer uses, each with the real header's signature (see README.md).
#ifndef RESNET3D_STAND_IN_INCLUDE_API_TYPES_H_
#define RESNET3D_STAND_IN_INCLUDE_API_TYPES_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "include/api/data_type.h"

namespace mindspore {
enum ModelType : uint32_t {
  kMindIR = 0,
};

class MSTensor {
 public:
  MSTensor();
  ~MSTensor();
  std::string Name() const;
  enum DataType DataType() const;
  const std::vector<int64_t> &Shape() const;
  int64_t ElementNum() const;
  std::shared_ptr<const void> Data() const;
  void *MutableData();
  size_t DataSize() const;
};

struct MSCallBackParam {
  std::string node_name;
  std::string node_type;
  double execute_time;
};

using MSKernelCallBack =
  std::function<bool(const std::vector<MSTensor> &, const std::vector<MSTensor> &, const MSCallBackParam &)>;
}  // namespace mindspore

#endif  // RESNET3D_STAND_IN_INCLUDE_API_TYPES_H_
