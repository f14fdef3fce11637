#include <atomic>
#include <string>

#include "backend/backend.h"

namespace radix {

size_t dtype_size(DType dtype) {
  switch (dtype) {
    case DType::kF32:
    case DType::kI32:
      return 4;
    case DType::kBF16:
    case DType::kF16:
      return 2;
    case DType::kF8E4M3:
      return 1;
  }
  return 0;
}

const char* dtype_name(DType dtype) {
  switch (dtype) {
    case DType::kF32:
      return "f32";
    case DType::kBF16:
      return "bf16";
    case DType::kF16:
      return "f16";
    case DType::kI32:
      return "i32";
    case DType::kF8E4M3:
      return "f8e4m3";
  }
  return "?";
}

void Backend::quantize_fp8_rows(const Tensor&, const Tensor&, const Tensor&) {
  throw BackendError(name() + " quantize_fp8_rows: this backend has no fp8 (use --device cuda)");
}

void Backend::linear_fp8(const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                         bool, const Tensor&) {
  throw BackendError(name() + " linear_fp8: this backend has no fp8 (use --device cuda)");
}

const char* activation_name(Activation act) {
  switch (act) {
    case Activation::kSiLU:
      return "silu";
    case Activation::kGeluTanh:
      return "gelu_tanh";
  }
  return "?";
}

Tensor Tensor::row_slice(int64_t begin, int64_t count) const {
  if (begin < 0 || count < 0 || begin + count > rows) {
    throw BackendError("row_slice [" + std::to_string(begin) + ", " +
                       std::to_string(begin + count) + ") out of " + std::to_string(rows) +
                       " rows");
  }
  Tensor view = *this;
  view.data =
      static_cast<char*>(data) + begin * row_stride * static_cast<int64_t>(dtype_size(dtype));
  view.rows = count;
  return view;
}

Tensor Tensor::col_slice(int64_t begin, int64_t count) const {
  if (begin < 0 || count < 0 || begin + count > cols) {
    throw BackendError("col_slice [" + std::to_string(begin) + ", " +
                       std::to_string(begin + count) + ") out of " + std::to_string(cols) +
                       " columns");
  }
  Tensor view = *this;
  view.data = static_cast<char*>(data) + begin * static_cast<int64_t>(dtype_size(dtype));
  view.cols = count;
  return view;
}

uint64_t new_attention_mask_id() {
  static std::atomic<uint64_t> next{1};
  return next.fetch_add(1, std::memory_order_relaxed);
}

}  // namespace radix
