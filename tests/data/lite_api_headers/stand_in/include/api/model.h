// Stand-in for MindSpore Lite's include/api/model.h (compile checks only): the subset of
// declarations ascend310_infer uses, each with the real header's signature (see README.md).
// Deliberately absent: the pre-2.2 interface (Serialization::Load, Graph, GraphCell).
#ifndef RESNET3D_STAND_IN_INCLUDE_API_MODEL_H_
#define RESNET3D_STAND_IN_INCLUDE_API_MODEL_H_

#include <memory>
#include <string>
#include <vector>

#include "include/api/context.h"
#include "include/api/status.h"
#include "include/api/types.h"

namespace mindspore {
class Model {
 public:
  Model();
  ~Model();
  Model(const Model &) = delete;
  void operator=(const Model &) = delete;
  Status Build(const std::string &model_path, ModelType model_type,
               const std::shared_ptr<Context> &model_context = nullptr);
  std::vector<MSTensor> GetInputs();
  std::vector<MSTensor> GetOutputs();
  Status Predict(const std::vector<MSTensor> &inputs, std::vector<MSTensor> *outputs,
                 const MSKernelCallBack &before = nullptr, const MSKernelCallBack &after = nullptr);
};
}  // namespace mindspore

#endif  // RESNET3D_STAND_IN_INCLUDE_API_MODEL_H_
