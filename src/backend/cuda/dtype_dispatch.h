// The CUDA backend's one dtype dispatch: from a runtime DType to the element type the backend
// stores for it, so an op calls one generic lambda instead of an if-chain per dtype. Host code.
#pragma once

#include <cstdint>
#include <string>

#include "backend/backend.h"
#include "backend/cuda/kernels/bf16.cuh"

namespace radix::cuda {

// The element type of each dtype the CUDA backend stores (kF8E4M3 as its raw byte; no kF16).
template <DType D>
struct Stored;
template <>
struct Stored<DType::kF32> {
  using type = float;
};
template <>
struct Stored<DType::kBF16> {
  using type = bf16;
};
template <>
struct Stored<DType::kI32> {
  using type = int32_t;
};
template <>
struct Stored<DType::kF8E4M3> {
  using type = uint8_t;
};

// Calls f(static_cast<Stored<D>::type*>(data)) for the D among kAllowed that equals `dtype` and
// returns what f returns (every instantiation must return the same type). A dtype outside
// kAllowed throws BackendError "cuda <op>: <what> ... is <dtype>, expected ...".
template <DType kFirst, DType... kRest, class F>
decltype(auto) with_dtype(DType dtype, void* data, const char* op, const char* what, F&& f) {
  if (dtype == kFirst) return f(static_cast<typename Stored<kFirst>::type*>(data));
  if constexpr (sizeof...(kRest) > 0) {
    return with_dtype<kRest...>(dtype, data, op, what, static_cast<F&&>(f));
  } else {
    throw BackendError(std::string("cuda ") + op + ": " + what + " has the unsupported dtype " +
                       dtype_name(dtype));
  }
}

// The same over a tensor's data.
template <DType... kAllowed, class F>
decltype(auto) with_dtype(const Tensor& t, const char* op, const char* what, F&& f) {
  return with_dtype<kAllowed...>(t.dtype, t.data, op, what, static_cast<F&&>(f));
}

// The two float dtypes of activations and the residual stream (callers have checked t).
template <class F>
decltype(auto) with_float_ptr(const Tensor& t, F&& f) {
  return with_dtype<DType::kF32, DType::kBF16>(t, "op", "a float tensor", static_cast<F&&>(f));
}

}  // namespace radix::cuda
