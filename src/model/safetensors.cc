#include "model/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <stdexcept>

namespace radix {
namespace {

using nlohmann::json;
using std::to_string;

size_t safetensors_dtype_size(const std::string& name) {
  if (name == "F64" || name == "I64" || name == "U64") return 8;
  if (name == "F32" || name == "I32" || name == "U32") return 4;
  if (name == "F16" || name == "BF16" || name == "I16" || name == "U16") return 2;
  if (name == "I8" || name == "U8" || name == "BOOL" || name == "F8_E4M3" || name == "F8_E5M2") {
    return 1;
  }
  return 0;
}

DType to_dtype(const std::string& name) {
  if (name == "BF16") return DType::kBF16;
  if (name == "F16") return DType::kF16;
  if (name == "F8_E4M3") return DType::kF8E4M3;
  return DType::kF32;
}

}  // namespace

SafetensorsFile::SafetensorsFile(const std::string& path) : path_(path) {
  auto fail = [&](const std::string& what) {
    throw std::runtime_error("safetensors " + path + ": " + what);
  };
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail(std::string("cannot open: ") + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    ::close(fd);
    fail("cannot stat");
  }
  size_ = static_cast<size_t>(st.st_size);
  if (size_ < 8) {
    ::close(fd);
    fail("file is " + to_string(size_) + " bytes, too short for the 8-byte header length");
  }
  map_ = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (map_ == MAP_FAILED) {
    map_ = nullptr;
    fail(std::string("mmap failed: ") + std::strerror(errno));
  }
  try {
    const auto* bytes = static_cast<const unsigned char*>(map_);
    uint64_t header_len = 0;
    for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | bytes[i];  // little endian
    if (header_len > size_ - 8) {
      fail("header length " + to_string(header_len) + " exceeds the file (" + to_string(size_) +
           " bytes)");
    }
    const char* header_begin = reinterpret_cast<const char*>(bytes + 8);
    json header = json::parse(header_begin, header_begin + header_len, nullptr, false);
    if (header.is_discarded()) fail("header is not valid JSON");
    if (!header.is_object()) fail("header is not a JSON object");
    const size_t data_begin = 8 + header_len;
    const size_t data_size = size_ - data_begin;

    std::vector<std::pair<size_t, size_t>> ranges;
    std::vector<std::string> range_names;
    for (auto it = header.begin(); it != header.end(); ++it) {
      const std::string& name = it.key();
      if (name == "__metadata__") continue;
      const json& e = it.value();
      if (!e.is_object() || !e.contains("dtype") || !e.contains("shape") ||
          !e.contains("data_offsets")) {
        fail("tensor '" + name + "' lacks dtype, shape or data_offsets");
      }
      if (!e["dtype"].is_string()) fail("tensor '" + name + "': dtype is not a string");
      SafetensorsTensor t;
      t.name = name;
      t.dtype_name = e["dtype"].get<std::string>();
      const size_t elem = safetensors_dtype_size(t.dtype_name);
      if (elem == 0) fail("tensor '" + name + "': unknown dtype " + t.dtype_name);
      t.dtype = to_dtype(t.dtype_name);
      if (!e["shape"].is_array()) fail("tensor '" + name + "': shape is not an array");
      uint64_t numel = 1;
      for (const json& dim : e["shape"]) {
        if (!dim.is_number_unsigned()) fail("tensor '" + name + "': shape has a non-integer");
        const uint64_t d = dim.get<uint64_t>();
        if (d != 0 && numel > std::numeric_limits<uint64_t>::max() / 8 / d) {
          fail("tensor '" + name + "': shape overflows");
        }
        numel *= d;
        t.shape.push_back(static_cast<int64_t>(d));
      }
      const json& off = e["data_offsets"];
      if (!off.is_array() || off.size() != 2 || !off[0].is_number_unsigned() ||
          !off[1].is_number_unsigned()) {
        fail("tensor '" + name + "': data_offsets must be two non-negative integers");
      }
      const uint64_t begin = off[0].get<uint64_t>();
      const uint64_t end = off[1].get<uint64_t>();
      if (begin > end || end > data_size) {
        fail("tensor '" + name + "': data_offsets [" + to_string(begin) + ", " + to_string(end) +
             ") outside the data region of " + to_string(data_size) + " bytes");
      }
      if (end - begin != numel * elem) {
        fail("tensor '" + name + "': " + to_string(end - begin) + " bytes but " + t.dtype_name +
             " x shape needs " + to_string(numel * elem));
      }
      t.data = bytes + data_begin + begin;
      t.nbytes = static_cast<size_t>(end - begin);
      ranges.emplace_back(begin, end);
      range_names.push_back(name);
      tensors_.emplace(name, std::move(t));
    }
    std::vector<size_t> order(ranges.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::sort(order.begin(), order.end(),
              [&](size_t a, size_t b) { return ranges[a] < ranges[b]; });
    for (size_t i = 1; i < order.size(); ++i) {
      const auto& prev = ranges[order[i - 1]];
      const auto& cur = ranges[order[i]];
      if (cur.first < prev.second && cur.first != cur.second && prev.first != prev.second) {
        fail("tensors '" + range_names[order[i - 1]] + "' and '" + range_names[order[i]] +
             "' overlap");
      }
    }
  } catch (...) {
    ::munmap(map_, size_);
    map_ = nullptr;
    throw;
  }
}

SafetensorsFile::~SafetensorsFile() {
  if (map_ != nullptr) ::munmap(map_, size_);
}

SafetensorsSet::SafetensorsSet(const std::string& folder) {
  namespace fs = std::filesystem;
  const fs::path dir(folder);
  const fs::path index_path = dir / "model.safetensors.index.json";
  const fs::path single_path = dir / "model.safetensors";
  if (fs::exists(index_path)) {
    std::ifstream in(index_path);
    std::stringstream text;
    text << in.rdbuf();
    json index = json::parse(text.str(), nullptr, false);
    const std::string where = index_path.string() + ": ";
    if (index.is_discarded() || !index.is_object()) {
      throw std::runtime_error(where + "not a valid JSON object");
    }
    if (!index.contains("weight_map") || !index["weight_map"].is_object()) {
      throw std::runtime_error(where + "missing the \"weight_map\" object");
    }
    std::map<std::string, SafetensorsFile*> shards;
    for (auto it = index["weight_map"].begin(); it != index["weight_map"].end(); ++it) {
      if (!it.value().is_string())
        throw std::runtime_error(where + "weight_map entry not a string");
      const std::string shard = it.value().get<std::string>();
      if (shard.empty() || shard.find('/') != std::string::npos || shard == "..") {
        throw std::runtime_error(where + "shard name '" + shard + "' is not a file in the folder");
      }
      if (!shards.count(shard)) {
        files_.push_back(std::make_unique<SafetensorsFile>((dir / shard).string()));
        shards[shard] = files_.back().get();
      }
      const auto& in_shard = shards[shard]->tensors();
      const auto found = in_shard.find(it.key());
      if (found == in_shard.end()) {
        throw std::runtime_error(where + "tensor '" + it.key() + "' is mapped to " + shard +
                                 " but that file does not contain it");
      }
      tensors_[it.key()] = &found->second;
    }
    for (const auto& [shard, file] : shards) {
      for (const auto& [name, t] : file->tensors()) {
        const auto mapped = index["weight_map"].find(name);
        if (mapped == index["weight_map"].end() || mapped->get<std::string>() != shard) {
          throw std::runtime_error(where + "tensor '" + name + "' in " + shard +
                                   " is not mapped to that file by weight_map");
        }
      }
    }
  } else if (fs::exists(single_path)) {
    files_.push_back(std::make_unique<SafetensorsFile>(single_path.string()));
    for (const auto& [name, t] : files_.back()->tensors()) tensors_[name] = &t;
  } else {
    throw std::runtime_error("no weights in " + folder +
                             " (expected model.safetensors or model.safetensors.index.json)");
  }
}

const SafetensorsTensor* SafetensorsSet::find(const std::string& name) const {
  const auto it = tensors_.find(name);
  return it == tensors_.end() ? nullptr : it->second;
}

int64_t first_non_finite(const void* data, DType dtype, size_t count) {
  // Non-finite: every exponent bit set (Inf when the mantissa is zero, NaN otherwise).
  auto scan16 = [&](uint16_t exponent) -> int64_t {
    const auto* v = static_cast<const uint16_t*>(data);
    for (size_t i = 0; i < count; ++i) {
      if ((v[i] & exponent) == exponent) return static_cast<int64_t>(i);
    }
    return -1;
  };
  switch (dtype) {
    case DType::kF32: {
      const auto* v = static_cast<const unsigned char*>(data);
      for (size_t i = 0; i < count; ++i) {
        uint32_t bits;
        std::memcpy(&bits, v + 4 * i, 4);
        if ((bits & 0x7F800000u) == 0x7F800000u) return static_cast<int64_t>(i);
      }
      return -1;
    }
    case DType::kBF16:
      return scan16(0x7F80);
    case DType::kF16:
      return scan16(0x7C00);
    case DType::kF8E4M3: {  // e4m3fn: S.1111.111 is NaN; there is no Inf
      const auto* v = static_cast<const uint8_t*>(data);
      for (size_t i = 0; i < count; ++i) {
        if ((v[i] & 0x7F) == 0x7F) return static_cast<int64_t>(i);
      }
      return -1;
    }
    case DType::kI32:
      break;
  }
  return -1;
}

}  // namespace radix
