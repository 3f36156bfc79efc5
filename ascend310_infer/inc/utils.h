/**
 * File helpers of the Ascend-310 inference program: list the pre-processed .bin clips, read one into
 * memory, write a model output next to its name (<clip>_0.bin, what postprocess.py reads).
 */
#ifndef RESNET3D_ASCEND310_INFER_INC_UTILS_H_
#define RESNET3D_ASCEND310_INFER_INC_UTILS_H_

#include <string>
#include <vector>

#include "include/api/types.h"

// Sorted paths of the *.bin files in dir_path (empty when the directory cannot be read).
std::vector<std::string> ListBinFiles(const std::string &dir_path);
// Absolute path of path, or "" when it does not exist.
std::string RealPath(const std::string &path);
// Reads the whole file into buffer; false (with a message) when unreadable.
bool ReadFile(const std::string &file, std::vector<char> *buffer);
// Writes outputs[i] to result_dir/<stem of input_file>_<i>.bin; returns false on an I/O error.
bool WriteResult(const std::string &input_file, const std::vector<mindspore::MSTensor> &outputs,
                 const std::string &result_dir);

#endif  // RESNET3D_ASCEND310_INFER_INC_UTILS_H_
