/**
 * File helpers of the Ascend-310 inference program (see inc/utils.h).
 */
#include "inc/utils.h"

#include <dirent.h>
#include <climits>
#include <cstdlib>
#include <algorithm>
#include <fstream>
#include <iostream>

std::vector<std::string> ListBinFiles(const std::string &dir_path) {
  std::vector<std::string> files;
  DIR *dir = opendir(dir_path.c_str());
  if (dir == nullptr) {
    std::cerr << "ERROR: cannot open directory " << dir_path << std::endl;
    return files;
  }
  for (struct dirent *entry = readdir(dir); entry != nullptr; entry = readdir(dir)) {
    std::string name = entry->d_name;
    if (name.size() > 4 && name.compare(name.size() - 4, 4, ".bin") == 0) {
      files.push_back(dir_path + "/" + name);
    }
  }
  closedir(dir);
  // readdir order is arbitrary: sort so runs are reproducible and logs comparable
  std::sort(files.begin(), files.end());
  return files;
}

std::string RealPath(const std::string &path) {
  char resolved[PATH_MAX] = {0};
  if (realpath(path.c_str(), resolved) == nullptr) {
    return "";
  }
  return std::string(resolved);
}

bool ReadFile(const std::string &file, std::vector<char> *buffer) {
  std::ifstream in(file, std::ios::binary | std::ios::ate);
  if (!in.is_open()) {
    std::cerr << "ERROR: cannot open " << file << std::endl;
    return false;
  }
  std::streamsize size = in.tellg();
  in.seekg(0, std::ios::beg);
  buffer->resize(static_cast<size_t>(size));
  if (!in.read(buffer->data(), size)) {
    std::cerr << "ERROR: cannot read " << file << std::endl;
    return false;
  }
  return true;
}

bool WriteResult(const std::string &input_file, const std::vector<mindspore::MSTensor> &outputs,
                 const std::string &result_dir) {
  std::string base = input_file.substr(input_file.find_last_of('/') + 1);
  base = base.substr(0, base.rfind('.'));
  for (size_t i = 0; i < outputs.size(); ++i) {
    std::string out_path = result_dir + "/" + base + "_" + std::to_string(i) + ".bin";
    std::shared_ptr<const void> data = outputs[i].Data();
    std::ofstream out(out_path, std::ios::binary | std::ios::trunc);
    if (!out.is_open() || !out.write(reinterpret_cast<const char *>(data.get()), outputs[i].DataSize())) {
      std::cerr << "ERROR: cannot write " << out_path << std::endl;
      return false;
    }
  }
  return true;
}
