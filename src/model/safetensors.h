// Memory-mapped safetensors files (one file, or shards listed by model.safetensors.index.json),
// with the header validated in full before any tensor is used.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "backend/backend.h"

namespace radix {

struct SafetensorsTensor {
  std::string name;
  DType dtype = DType::kF32;  // F32, BF16, F16 or F8E4M3 (other dtypes are rejected when used)
  std::string dtype_name;     // as written in the header, e.g. "BF16", "I64"
  std::vector<int64_t> shape;
  const void* data = nullptr;  // into the mapping; valid while the file object lives
  size_t nbytes = 0;
  bool supported() const {
    return dtype_name == "F32" || dtype_name == "BF16" || dtype_name == "F16";
  }
};

// The first element of `count` values at `data` (F32, BF16, F16 or F8E4M3, whose e4m3fn form has
// NaN and no Inf) that is NaN or +-Inf, or -1.
// A bit test on the exponent, at memory speed: the loader runs it over every weight it reads, so a
// corrupt checkpoint is reported at load time instead of as NaN outputs.
int64_t first_non_finite(const void* data, DType dtype, size_t count);

// One mapped file. Throws std::runtime_error naming the file and the problem for: a file too
// short for its header, a header length beyond the file, malformed JSON, an entry without
// dtype/shape/data_offsets, offsets out of the data region or overlapping, or a byte size that
// does not match dtype x shape.
class SafetensorsFile {
 public:
  explicit SafetensorsFile(const std::string& path);
  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::string& path() const { return path_; }
  const std::map<std::string, SafetensorsTensor>& tensors() const { return tensors_; }

 private:
  std::string path_;
  void* map_ = nullptr;
  size_t size_ = 0;
  std::map<std::string, SafetensorsTensor> tensors_;
};

// All tensors of a model folder: model.safetensors, or the shards named by
// model.safetensors.index.json (every name in its weight_map must be in the named shard and every
// shard tensor in the weight_map). Throws std::runtime_error on any inconsistency.
class SafetensorsSet {
 public:
  explicit SafetensorsSet(const std::string& folder);
  const std::map<std::string, const SafetensorsTensor*>& tensors() const { return tensors_; }
  const SafetensorsTensor* find(const std::string& name) const;

 private:
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::map<std::string, const SafetensorsTensor*> tensors_;
};

}  // namespace radix
