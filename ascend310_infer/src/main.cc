/**
 * Ascend-310 inference of an exported resnet3d MINDIR (network + softmax) with the MindSpore Lite C++ API:
 * runs every pre-processed clip (.bin, float32 [1,3,T,H,W], written by preprocess.py) and writes one result
 * .bin of class probabilities per clip (<clip>_0.bin), which postprocess.py turns into the accuracy line.
 * (MindSpore >= 2.2 no longer ships a 310 inference library: 310 inference is MindSpore Lite's.)
 *
 *   main --mindir_path=M.mindir [--dataset_path=preprocess_Result/data] [--result_path=result_Files]
 *        [--time_path=time_Result] [--device_id=0]
 */
#include <sys/time.h>

#include <cstring>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "include/api/context.h"
#include "include/api/model.h"
#include "include/api/status.h"
#include "include/api/types.h"
#include "inc/utils.h"

namespace {

double NowMs() {
  struct timeval tv = {0, 0};
  gettimeofday(&tv, nullptr);
  return tv.tv_sec * 1000.0 + tv.tv_usec / 1000.0;
}

std::string ShapeText(const std::vector<int64_t> &shape) {
  std::ostringstream text;
  for (size_t i = 0; i < shape.size(); ++i) {
    text << (i ? "x" : "") << shape[i];
  }
  return text.str();
}

bool BuildModel(const std::string &mindir, uint32_t device_id, mindspore::Model *model) {
  auto context = std::make_shared<mindspore::Context>();
  auto ascend = std::make_shared<mindspore::AscendDeviceInfo>();
  ascend->SetDeviceID(device_id);
  context->MutableDeviceInfo().push_back(ascend);
  mindspore::Status status = model->Build(mindir, mindspore::ModelType::kMindIR, context);
  if (status != mindspore::kSuccess) {
    std::cerr << "error: MindSpore Lite cannot build " << mindir << " on Ascend device " << device_id << " ("
              << status.ToString() << "): check the device id (npu-smi info) and that the MINDIR was exported"
              << " by export.py --file_format=MINDIR" << std::endl;
    return false;
  }
  return true;
}

// Runs one clip file and writes its result files; false (with a message) on any failure.
bool RunClip(const std::string &file, const Options &options, mindspore::Model *model,
             std::vector<mindspore::MSTensor> *inputs, std::vector<char> *clip, double *elapsed_ms) {
  if (!ReadFile(file, clip)) {
    return false;
  }
  mindspore::MSTensor &input = (*inputs)[0];
  // one clip per file: the model must have been exported with --batch_size=1 and the same clip shape
  if (clip->size() != input.DataSize()) {
    std::cerr << "error: " << file << " has " << clip->size() << " bytes but the model input "
              << ShapeText(input.Shape()) << " needs " << input.DataSize() << ": export with --batch_size=1 and"
              << " the preprocessing's sample_duration / sample_size" << std::endl;
    return false;
  }
  std::memcpy(input.MutableData(), clip->data(), clip->size());
  std::vector<mindspore::MSTensor> outputs;
  const double start = NowMs();
  mindspore::Status status = model->Predict(*inputs, &outputs);
  *elapsed_ms += NowMs() - start;
  if (status != mindspore::kSuccess) {
    std::cerr << "error: predicting " << file << " failed (" << status.ToString() << ")" << std::endl;
    return false;
  }
  for (size_t i = 0; i < outputs.size(); ++i) {
    // postprocess.py reads float32 probabilities
    if (outputs[i].DataType() != mindspore::DataType::kNumberTypeFloat32) {
      std::cerr << "error: output " << i << " of the model is not float32: export the MINDIR with export.py"
                << std::endl;
      return false;
    }
    std::shared_ptr<const void> data = outputs[i].Data();
    if (data == nullptr || !WriteFile(ResultPath(file, i, options.result_path), data.get(), outputs[i].DataSize())) {
      return false;
    }
  }
  return true;
}

}  // namespace

int main(int argc, char **argv) {
  Options options;
  std::string error;
  if (!ParseOptions(argc, argv, &options, &error)) {
    std::cerr << "error: " << error;
    if (error.back() != '\n') {
      std::cerr << std::endl;
    }
    return 2;
  }
  const std::string mindir = RealPath(options.mindir_path);
  if (mindir.empty()) {
    std::cerr << "error: MINDIR " << options.mindir_path << " not found (--mindir_path)" << std::endl;
    return 2;
  }
  std::vector<std::string> files = ListBinFiles(options.dataset_path);
  if (files.empty()) {
    std::cerr << "error: no .bin clips in " << options.dataset_path << " (--dataset_path): run preprocess.py first"
              << std::endl;
    return 2;
  }

  mindspore::Model model;
  if (!BuildModel(mindir, options.device_id, &model)) {
    return 1;
  }
  std::vector<mindspore::MSTensor> inputs = model.GetInputs();
  if (inputs.size() != 1) {
    std::cerr << "error: expected a model with one input, " << mindir << " has " << inputs.size() << std::endl;
    return 1;
  }

  double total_ms = 0.0;
  std::vector<char> clip;
  for (const std::string &file : files) {
    if (!RunClip(file, options, &model, &inputs, &clip, &total_ms)) {
      return 1;
    }
    std::cout << "predicted " << file << std::endl;
  }

  std::ostringstream summary;
  summary << "NN inference cost average time: " << total_ms / files.size() << " ms of infer_count "
          << files.size() << std::endl;
  std::cout << summary.str();
  std::ofstream timing(options.time_path + "/test_perform_static.txt", std::ios::trunc);
  if (!(timing << summary.str())) {
    std::cerr << "warning: cannot write " << options.time_path << "/test_perform_static.txt" << std::endl;
  }
  return 0;
}
