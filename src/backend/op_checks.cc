#include "backend/op_checks.h"

#include <limits>

namespace radix {

using std::to_string;

std::string shape_str(const Tensor& t) {
  std::string s = "[";  // appended piecewise: GCC 12 warns (-Wrestrict) on "[" + to_string(...)
  s += to_string(t.rows);
  s += ", ";
  s += to_string(t.cols);
  s += "] ";
  s += dtype_name(t.dtype);
  return s;
}

void OpChecks::fail(const char* op, const std::string& what) const {
  throw BackendError(std::string(backend_) + " " + op + ": " + what);
}

void OpChecks::dtype(const char* op, const char* arg, const Tensor& t, DType want) const {
  RADIX_OP_REQUIRE(*this, t.dtype == want, op,
                   std::string(arg) + " must be " + dtype_name(want) + ", got " + shape_str(t));
  RADIX_OP_REQUIRE(*this, t.data != nullptr || t.numel() == 0, op,
                   std::string(arg) + " has no data");
  RADIX_OP_REQUIRE(*this, t.row_stride >= t.cols, op,
                   std::string(arg) + " has a row stride below its width");
}

void OpChecks::index(const char* op, const char* arg, const Tensor& t, int64_t n) const {
  RADIX_OP_REQUIRE(*this, t.dtype == DType::kI32 && t.cols == 1, op,
                   std::string(arg) + " must be an i32 column, got " + shape_str(t));
  RADIX_OP_REQUIRE(*this, t.rows >= n, op,
                   std::string(arg) + " has " + to_string(t.rows) + " rows, needs " + to_string(n));
  RADIX_OP_REQUIRE(*this, t.contiguous(), op, std::string(arg) + " must be contiguous");
}

void OpChecks::shape(const char* op, const char* arg, const Tensor& t, int64_t rows,
                     int64_t cols) const {
  RADIX_OP_REQUIRE(*this, t.rows == rows && t.cols == cols, op,
                   std::string(arg) + " is " + shape_str(t) + ", expected [" + to_string(rows) +
                       ", " + to_string(cols) + "]");
}

void OpChecks::attention_qkv(const char* op, const Tensor& qkv, const AttentionShape& shape,
                             DType want) const {
  dtype(op, "qkv", qkv, want);
  RADIX_OP_REQUIRE(*this,
                   shape.num_q_heads > 0 && shape.num_kv_heads > 0 && shape.head_dim > 0 &&
                       shape.num_q_heads % shape.num_kv_heads == 0,
                   op,
                   "bad head shape: " + to_string(shape.num_q_heads) + " q heads, " +
                       to_string(shape.num_kv_heads) + " kv heads, head_dim " +
                       to_string(shape.head_dim));
  const int64_t width =
      static_cast<int64_t>(shape.num_q_heads + 2 * shape.num_kv_heads) * shape.head_dim;
  RADIX_OP_REQUIRE(*this, qkv.cols == width, op,
                   "qkv is " + shape_str(qkv) + ", expected " + to_string(width) + " columns");
  RADIX_OP_REQUIRE(*this,
                   shape.softcap >= 0.0f && shape.softcap < std::numeric_limits<float>::infinity(),
                   op, "softcap must be finite and >= 0, got " + to_string(shape.softcap));
}

void OpChecks::bias(const char* op, const Tensor& bias, int64_t m, DType want) const {
  if (bias.data == nullptr && bias.numel() == 0) return;
  dtype(op, "bias", bias, want);
  shape(op, "bias", bias, 1, m);
}

void OpChecks::rope_table(const char* op, const Tensor& inv_freq, int32_t head_dim) const {
  RADIX_OP_REQUIRE(*this, head_dim > 0 && head_dim % 2 == 0, op,
                   "head_dim must be even and positive, got " + to_string(head_dim));
  dtype(op, "inv_freq", inv_freq, DType::kF32);
  shape(op, "inv_freq", inv_freq, 1, head_dim / 2);
}

void OpChecks::attention_window(const char* op, const AttentionMask& mask, int64_t n) const {
  RADIX_OP_REQUIRE(*this, mask.window >= 0, op,
                   "window must be >= 0, got " + to_string(mask.window));
  if (mask.window == 0) return;
  RADIX_OP_REQUIRE(
      *this, mask.kind != AttentionMask::Kind::kVarlenBidirectional, op,
      "a sliding window needs a causal mask (kVarlenCausal or kTree), not a bidirectional one");
  index(op, "positions", mask.positions, n);
}

}  // namespace radix
