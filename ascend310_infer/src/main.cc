/**
 * Ascend-310 inference of an exported resnet3d MINDIR (network + softmax): runs every pre-processed
 * clip (.bin, float32 [1,3,T,H,W], written by preprocess.py) and writes one result .bin of class
 * probabilities per clip (<clip>_0.bin), which postprocess.py turns into the accuracy line.
 *
 *   main --mindir_path=M.mindir --dataset_path=preprocess_Result/data [--result_path=result_Files]
 *        [--device_id=0]
 */
#include <gflags/gflags.h>
#include <sys/time.h>

#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "include/api/context.h"
#include "include/api/model.h"
#include "include/api/serialization.h"
#include "include/api/types.h"
#include "inc/utils.h"

DEFINE_string(mindir_path, "", "exported MINDIR (export.py --file_format=MINDIR)");
DEFINE_string(dataset_path, "./preprocess_Result/data", "directory of pre-processed .bin clips");
DEFINE_string(result_path, "./result_Files", "directory for the result .bin files");
DEFINE_string(time_path, "./time_Result", "directory for the timing summary");
DEFINE_int32(device_id, 0, "Ascend device id");

namespace {

double NowMs() {
  struct timeval tv = {0, 0};
  gettimeofday(&tv, nullptr);
  return tv.tv_sec * 1000.0 + tv.tv_usec / 1000.0;
}

}  // namespace

int main(int argc, char **argv) {
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  const std::string mindir = RealPath(FLAGS_mindir_path);
  if (mindir.empty()) {
    std::cerr << "ERROR: MINDIR " << FLAGS_mindir_path << " not found" << std::endl;
    return 1;
  }

  auto context = std::make_shared<mindspore::Context>();
  auto ascend310 = std::make_shared<mindspore::Ascend310DeviceInfo>();
  ascend310->SetDeviceID(FLAGS_device_id);
  context->MutableDeviceInfo().push_back(ascend310);

  mindspore::Graph graph;
  if (mindspore::Serialization::Load(mindir, mindspore::ModelType::kMindIR, &graph) != mindspore::kSuccess) {
    std::cerr << "ERROR: cannot load " << mindir << " as MINDIR" << std::endl;
    return 1;
  }
  mindspore::Model model;
  if (model.Build(mindspore::GraphCell(graph), context) != mindspore::kSuccess) {
    std::cerr << "ERROR: building the model on device " << FLAGS_device_id << " failed" << std::endl;
    return 1;
  }
  std::vector<mindspore::MSTensor> model_inputs = model.GetInputs();
  if (model_inputs.size() != 1) {
    std::cerr << "ERROR: expected a model with one input, got " << model_inputs.size() << std::endl;
    return 1;
  }
  const mindspore::MSTensor &input = model_inputs[0];

  std::vector<std::string> files = ListBinFiles(FLAGS_dataset_path);
  if (files.empty()) {
    std::cerr << "ERROR: no .bin clips in " << FLAGS_dataset_path << ": run preprocess.py first" << std::endl;
    return 1;
  }

  double total_ms = 0.0;
  std::vector<char> clip;
  for (const std::string &file : files) {
    if (!ReadFile(file, &clip)) {
      return 1;
    }
    // one clip per file: the model must have been exported with --batch_size=1 and the same clip shape
    if (clip.size() != input.DataSize()) {
      std::cerr << "ERROR: " << file << " has " << clip.size() << " bytes, the model input needs "
                << input.DataSize() << " (export with --batch_size=1 and the preprocessing's "
                << "sample_duration / sample_size)" << std::endl;
      return 1;
    }
    std::vector<mindspore::MSTensor> inputs;
    inputs.emplace_back(input.Name(), input.DataType(), input.Shape(), clip.data(), clip.size());
    std::vector<mindspore::MSTensor> outputs;
    double start = NowMs();
    if (model.Predict(inputs, &outputs) != mindspore::kSuccess) {
      std::cerr << "ERROR: predicting " << file << " failed" << std::endl;
      return 1;
    }
    total_ms += NowMs() - start;
    if (!WriteResult(file, outputs, FLAGS_result_path)) {
      return 1;
    }
    std::cout << "predicted " << file << std::endl;
  }

  std::ostringstream summary;
  summary << "NN inference cost average time: " << total_ms / files.size() << " ms of infer_count "
          << files.size() << std::endl;
  std::cout << summary.str();
  std::ofstream timing(FLAGS_time_path + "/test_perform_static.txt", std::ios::trunc);
  timing << summary.str();
  return 0;
}
