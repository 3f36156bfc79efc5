/**
 * Helpers of the Ascend-310 inference program that do not touch MindSpore Lite: command-line options,
 * listing the pre-processed .bin clips, reading one, naming and writing a result file
 * (<result dir>/<clip stem>_<output index>.bin, the name postprocess.py reads).
 */
#ifndef RESNET3D_ASCEND310_INFER_INC_UTILS_H_
#define RESNET3D_ASCEND310_INFER_INC_UTILS_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

struct Options {
  std::string mindir_path;
  std::string dataset_path = "./preprocess_Result/data";
  std::string result_path = "./result_Files";
  std::string time_path = "./time_Result";
  uint32_t device_id = 0;
};

// One line per option, for --help and for the error on an unknown option.
std::string OptionsUsage();
// Parses --key=value arguments into options; false with *error set on an unknown, malformed or missing option.
bool ParseOptions(int argc, const char *const *argv, Options *options, std::string *error);

// Sorted paths of the *.bin files in dir_path (empty when the directory cannot be read).
std::vector<std::string> ListBinFiles(const std::string &dir_path);
// Absolute path of path, or "" when it does not exist.
std::string RealPath(const std::string &path);
// Reads the whole file into buffer; false (with a message on stderr) when unreadable.
bool ReadFile(const std::string &file, std::vector<char> *buffer);
// result_dir/<stem of input_file>_<index>.bin
std::string ResultPath(const std::string &input_file, size_t index, const std::string &result_dir);
// Writes size bytes to path through a temporary name, so a failed run leaves no truncated result behind.
bool WriteFile(const std::string &path, const void *data, size_t size);

#endif  // RESNET3D_ASCEND310_INFER_INC_UTILS_H_
