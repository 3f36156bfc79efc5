// Names every declaration of stand_in/include/api/*.h with its exact type. It compiles against the
// stand-ins (so the probe covers them) and, where the MindSpore Lite headers are available, against those
// (so each stand-in declaration exists in the real API with that signature and value).
#include <functional>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "include/api/context.h"
#include "include/api/data_type.h"
#include "include/api/model.h"
#include "include/api/status.h"
#include "include/api/types.h"

namespace ms = mindspore;

// underlying types of the enums the stand-ins declare with one
static_assert(std::is_same<std::underlying_type<ms::DataType>::type, int>::value, "DataType : int");
static_assert(std::is_same<std::underlying_type<ms::StatusCode>::type, uint32_t>::value, "StatusCode : uint32_t");
static_assert(std::is_same<std::underlying_type<ms::ModelType>::type, uint32_t>::value, "ModelType : uint32_t");

// data_type.h
static_assert(static_cast<int>(ms::DataType::kTypeUnknown) == 0, "kTypeUnknown");
static_assert(static_cast<int>(ms::DataType::kNumberTypeFloat16) == 42, "kNumberTypeFloat16");
static_assert(static_cast<int>(ms::DataType::kNumberTypeFloat32) == 43, "kNumberTypeFloat32");

// status.h
static_assert(ms::kSuccess == 0, "kSuccess");
static_assert(std::is_default_constructible<ms::Status>::value, "Status()");
[[maybe_unused]] static const auto kStatusCode = static_cast<enum ms::StatusCode (ms::Status::*)() const>(
  &ms::Status::StatusCode);
[[maybe_unused]] static const auto kToString = static_cast<std::string (ms::Status::*)() const>(&ms::Status::ToString);
[[maybe_unused]] static const auto kEq = static_cast<bool (ms::Status::*)(enum ms::StatusCode) const>(
  &ms::Status::operator==);
[[maybe_unused]] static const auto kNe = static_cast<bool (ms::Status::*)(enum ms::StatusCode) const>(
  &ms::Status::operator!=);
[[maybe_unused]] static const auto kIsOk = static_cast<bool (ms::Status::*)() const>(&ms::Status::IsOk);

// types.h
static_assert(ms::kMindIR == 0, "kMindIR");
static_assert(std::is_default_constructible<ms::MSTensor>::value, "MSTensor()");
[[maybe_unused]] static const auto kName = static_cast<std::string (ms::MSTensor::*)() const>(&ms::MSTensor::Name);
[[maybe_unused]] static const auto kDataType = static_cast<enum ms::DataType (ms::MSTensor::*)() const>(
  &ms::MSTensor::DataType);
[[maybe_unused]] static const auto kShape = static_cast<const std::vector<int64_t> &(ms::MSTensor::*)() const>(
  &ms::MSTensor::Shape);
[[maybe_unused]] static const auto kElementNum = static_cast<int64_t (ms::MSTensor::*)() const>(
  &ms::MSTensor::ElementNum);
[[maybe_unused]] static const auto kData = static_cast<std::shared_ptr<const void> (ms::MSTensor::*)() const>(
  &ms::MSTensor::Data);
[[maybe_unused]] static const auto kMutableData = static_cast<void *(ms::MSTensor::*)()>(&ms::MSTensor::MutableData);
[[maybe_unused]] static const auto kDataSize = static_cast<size_t (ms::MSTensor::*)() const>(&ms::MSTensor::DataSize);
static_assert(std::is_same<decltype(ms::MSCallBackParam::node_name), std::string>::value, "node_name");
static_assert(std::is_same<decltype(ms::MSCallBackParam::node_type), std::string>::value, "node_type");
static_assert(std::is_same<decltype(ms::MSCallBackParam::execute_time), double>::value, "execute_time");
static_assert(std::is_same<ms::MSKernelCallBack,
                           std::function<bool(const std::vector<ms::MSTensor> &, const std::vector<ms::MSTensor> &,
                                              const ms::MSCallBackParam &)>>::value,
              "MSKernelCallBack");

// context.h
static_assert(ms::kCPU == 0 && ms::kAscend == 3, "DeviceType");
static_assert(std::is_default_constructible<ms::Context>::value, "Context()");
[[maybe_unused]] static const auto kMutableDeviceInfo =
  static_cast<std::vector<std::shared_ptr<ms::DeviceInfoContext>> &(ms::Context::*)()>(&ms::Context::MutableDeviceInfo);
static_assert(std::is_base_of<std::enable_shared_from_this<ms::DeviceInfoContext>, ms::DeviceInfoContext>::value,
              "DeviceInfoContext base");
static_assert(std::is_abstract<ms::DeviceInfoContext>::value && std::has_virtual_destructor<ms::DeviceInfoContext>::value,
              "DeviceInfoContext is an abstract base");
[[maybe_unused]] static const auto kGetDeviceType = static_cast<enum ms::DeviceType (ms::DeviceInfoContext::*)() const>(
  &ms::DeviceInfoContext::GetDeviceType);
static_assert(std::is_base_of<ms::DeviceInfoContext, ms::AscendDeviceInfo>::value, "AscendDeviceInfo base");
static_assert(std::is_default_constructible<ms::AscendDeviceInfo>::value, "AscendDeviceInfo()");
[[maybe_unused]] static const auto kSetDeviceID = static_cast<void (ms::AscendDeviceInfo::*)(uint32_t)>(
  &ms::AscendDeviceInfo::SetDeviceID);
[[maybe_unused]] static const auto kGetDeviceID = static_cast<uint32_t (ms::AscendDeviceInfo::*)() const>(
  &ms::AscendDeviceInfo::GetDeviceID);

// model.h
static_assert(std::is_default_constructible<ms::Model>::value, "Model()");
static_assert(!std::is_copy_constructible<ms::Model>::value && !std::is_copy_assignable<ms::Model>::value,
              "Model is not copyable");
[[maybe_unused]] static const auto kBuild =
  static_cast<ms::Status (ms::Model::*)(const std::string &, ms::ModelType, const std::shared_ptr<ms::Context> &)>(
    &ms::Model::Build);
[[maybe_unused]] static const auto kGetInputs = static_cast<std::vector<ms::MSTensor> (ms::Model::*)()>(
  &ms::Model::GetInputs);
[[maybe_unused]] static const auto kGetOutputs = static_cast<std::vector<ms::MSTensor> (ms::Model::*)()>(
  &ms::Model::GetOutputs);
[[maybe_unused]] static const auto kPredict = static_cast<ms::Status (ms::Model::*)(
  const std::vector<ms::MSTensor> &, std::vector<ms::MSTensor> *, const ms::MSKernelCallBack &,
  const ms::MSKernelCallBack &)>(&ms::Model::Predict);

// The defaulted arguments main.cc relies on: Build(path, type, context) and Predict(inputs, &outputs).
[[maybe_unused]] static void CallsWithDefaults(ms::Model *model, const std::shared_ptr<ms::Context> &context) {
  std::vector<ms::MSTensor> outputs;
  (void)model->Build(std::string("m.mindir"), ms::ModelType::kMindIR, context);
  (void)model->Predict(model->GetInputs(), &outputs);
}
