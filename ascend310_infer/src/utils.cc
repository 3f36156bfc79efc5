/**
 * Helpers of the Ascend-310 inference program (see inc/utils.h).
 */
#include "inc/utils.h"

#include <dirent.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>

namespace {

// The program needs only these five options, so it parses them itself instead of depending on gflags,
// which the MindSpore Lite package does not ship.
bool SetOption(const std::string &key, const std::string &value, Options *options, std::string *error) {
  if (key == "mindir_path") {
    options->mindir_path = value;
  } else if (key == "dataset_path") {
    options->dataset_path = value;
  } else if (key == "result_path") {
    options->result_path = value;
  } else if (key == "time_path") {
    options->time_path = value;
  } else if (key == "device_id") {
    char *end = nullptr;
    errno = 0;
    unsigned long id = std::strtoul(value.c_str(), &end, 10);  // NOLINT(runtime/int): strtoul's type
    if (value.empty() || value[0] == '-' || *end != '\0' || errno != 0 || id > UINT32_MAX) {
      *error = "--device_id=" + value + " is not a device number (0, 1, ...)";
      return false;
    }
    options->device_id = static_cast<uint32_t>(id);
  } else {
    *error = "unknown option --" + key + "; options:\n" + OptionsUsage();
    return false;
  }
  return true;
}

}  // namespace

std::string OptionsUsage() {
  return "  --mindir_path=PATH   exported MINDIR (export.py --file_format=MINDIR --batch_size=1), required\n"
         "  --dataset_path=DIR   pre-processed .bin clips (default ./preprocess_Result/data)\n"
         "  --result_path=DIR    where the result .bin files go (default ./result_Files)\n"
         "  --time_path=DIR      where test_perform_static.txt goes (default ./time_Result)\n"
         "  --device_id=N        Ascend device id (default 0)\n";
}

bool ParseOptions(int argc, const char *const *argv, Options *options, std::string *error) {
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const size_t eq = arg.find('=');
    if (arg.compare(0, 2, "--") != 0 || eq == std::string::npos || eq == 2) {
      *error = "argument '" + arg + "' is not --key=value; options:\n" + OptionsUsage();
      return false;
    }
    if (!SetOption(arg.substr(2, eq - 2), arg.substr(eq + 1), options, error)) {
      return false;
    }
  }
  if (options->mindir_path.empty()) {
    *error = "--mindir_path is required; options:\n" + OptionsUsage();
    return false;
  }
  return true;
}

std::vector<std::string> ListBinFiles(const std::string &dir_path) {
  std::vector<std::string> files;
  DIR *dir = opendir(dir_path.c_str());
  if (dir == nullptr) {
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
    std::cerr << "error: cannot open " << file << std::endl;
    return false;
  }
  std::streamsize size = in.tellg();
  in.seekg(0, std::ios::beg);
  buffer->resize(static_cast<size_t>(size));
  if (!in.read(buffer->data(), size)) {
    std::cerr << "error: cannot read " << file << std::endl;
    return false;
  }
  return true;
}

std::string ResultPath(const std::string &input_file, size_t index, const std::string &result_dir) {
  std::string base = input_file.substr(input_file.find_last_of('/') + 1);
  base = base.substr(0, base.rfind('.'));
  return result_dir + "/" + base + "_" + std::to_string(index) + ".bin";
}

bool WriteFile(const std::string &path, const void *data, size_t size) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out.is_open() || !out.write(static_cast<const char *>(data), static_cast<std::streamsize>(size)) ||
        !out.flush()) {
      std::cerr << "error: cannot write " << path << " (check that the directory exists and is writable)"
                << std::endl;
      std::remove(tmp.c_str());
      return false;
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::cerr << "error: cannot rename " << tmp << " to " << path << std::endl;
    std::remove(tmp.c_str());
    return false;
  }
  return true;
}
