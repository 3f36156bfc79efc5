// Stand-in for MindSpore Lite's include/api/context.h (compile checks only): the subset of
// declarations ascend310_infer uses, each with the real header's signature (see README.md).
#ifndef RESNET3D_STAND_IN_INCLUDE_API_CONTEXT_H_
#define RESNET3D_STAND_IN_INCLUDE_API_CONTEXT_H_

#include <cstdint>
#include <memory>
#include <vector>

#include "include/api/types.h"

namespace mindspore {
enum DeviceType {
  kCPU = 0,
  kAscend = 3,
};

class DeviceInfoContext;

class Context {
 public:
  Context();
  std::vector<std::shared_ptr<DeviceInfoContext>> &MutableDeviceInfo();
};

class DeviceInfoContext : public std::enable_shared_from_this<DeviceInfoContext> {
 public:
  DeviceInfoContext();
  virtual ~DeviceInfoContext() = default;
  virtual enum DeviceType GetDeviceType() const = 0;
};

class AscendDeviceInfo : public DeviceInfoContext {
 public:
  enum DeviceType GetDeviceType() const override { return DeviceType::kAscend; }
  void SetDeviceID(uint32_t device_id);
  uint32_t GetDeviceID() const;
};
}  // namespace mindspore

#endif  // RESNET3D_STAND_IN_INCLUDE_API_CONTEXT_H_
