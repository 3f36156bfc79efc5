// Stand-in for MindSpore Lite's include/api/status.h (compile checks only): the subset of
// declarations ascend310_infer uses, each with the real header's signature (see README.md).
#ifndef RESNET3D_STAND_IN_INCLUDE_API_STATUS_H_
#define RESNET3D_STAND_IN_INCLUDE_API_STATUS_H_

#include <cstdint>
#include <string>

namespace mindspore {
enum StatusCode : uint32_t {
  kSuccess = 0,
};

class Status {
 public:
  Status();
  enum StatusCode StatusCode() const;
  std::string ToString() const;
  bool operator==(enum StatusCode other_code) const;
  bool operator!=(enum StatusCode other_code) const;
  bool IsOk() const;
};
}  // namespace mindspore

#endif  // RESNET3D_STAND_IN_INCLUDE_API_STATUS_H_
