// Argument checks shared by the backends' op entry points. A failed check throws
// BackendError("<backend> <op>: <what>"), so a bad call names the backend, the op and the argument.
#pragma once

#include <cstdint>
#include <string>

#include "backend/backend.h"

// Checks `ok`; only when it fails is `what` (an expression giving a std::string) evaluated. The
// checks run on every op of every forward (300-400 ops), and building their messages eagerly cost
// the host ~3 µs an op: the 8B stream forward's enqueue went 4.25 -> 2.88 ms without it
// (bench/RESULTS.md, stop 19 calls P and Q).
#define RADIX_OP_REQUIRE(checks, ok, op, what) \
  do {                                         \
    if (!(ok)) (checks).fail((op), (what));    \
  } while (0)

namespace radix {

std::string shape_str(const Tensor& t);  // "[rows, cols] dtype"

class OpChecks {
 public:
  explicit constexpr OpChecks(const char* backend) : backend_(backend) {}

  // Throws BackendError("<backend> <op>: <what>"). Checks go through RADIX_OP_REQUIRE, which
  // builds the message only when the check fails.
  [[noreturn]] void fail(const char* op, const std::string& what) const;
  // `t` has dtype `want`, data unless empty, and a row stride no smaller than its width.
  void dtype(const char* op, const char* arg, const Tensor& t, DType want) const;
  // `t` is a contiguous i32 column of at least n rows.
  void index(const char* op, const char* arg, const Tensor& t, int64_t n) const;
  void shape(const char* op, const char* arg, const Tensor& t, int64_t rows, int64_t cols) const;
  // Positive head counts with num_q_heads a multiple of num_kv_heads, and `qkv` of dtype `want`
  // exactly (Hq + 2 Hkv) * head_dim wide (the fused projection the attention ops read).
  // Also: a finite, non-negative soft-cap.
  void attention_qkv(const char* op, const Tensor& qkv, const AttentionShape& shape,
                     DType want) const;
  // An optional bias (empty: no bias) is a [1, m] row of dtype `want`.
  void bias(const char* op, const Tensor& bias, int64_t m, DType want) const;
  // inv_freq is a [1, head_dim / 2] kF32 row and head_dim is even.
  void rope_table(const char* op, const Tensor& inv_freq, int32_t head_dim) const;
  // The mask's window is >= 0; with a window, positions is an i32 column of n rows and the kind
  // is causal (kVarlenCausal or kTree).
  void attention_window(const char* op, const AttentionMask& mask, int64_t n) const;

 private:
  const char* backend_;
};

}  // namespace radix
