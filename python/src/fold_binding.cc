#include "fold_binding.h"

#include <nanobind/ndarray.h>

#include <cstdint>
#include <span>
#include <utility>
#include <vector>

#include "core/fold_plan.h"

namespace nb = nanobind;

namespace radix::python {
namespace {

using InputArray = nb::ndarray<const int32_t, nb::ndim<1>, nb::c_contig, nb::device::cpu>;
using OutputArray = nb::ndarray<nb::numpy, int32_t, nb::ndim<1>>;

std::span<const int32_t> as_span(const InputArray& a) { return {a.data(), a.shape(0)}; }

// Hands a plan vector to numpy without a copy: the array owns the vector through a capsule.
OutputArray to_numpy(std::vector<int32_t>&& values) {
  auto* owned = new std::vector<int32_t>(std::move(values));
  nb::capsule owner(owned, [](void* p) noexcept { delete static_cast<std::vector<int32_t>*>(p); });
  return OutputArray(owned->data(), {owned->size()}, owner);
}

nb::dict fold(const InputArray& ids, const InputArray& positions, const InputArray& cu_seqlens,
              int32_t pad_to_multiple, double threshold) {
  FoldOptions options;
  options.pad_to_multiple = pad_to_multiple;
  options.threshold = threshold;
  FoldPlan plan;
  {
    // The inputs stay alive (the caller holds them) and nothing here touches Python objects, so
    // other Python threads may run while the batch folds.
    nb::gil_scoped_release release;
    build_fold_plan(as_span(ids), as_span(positions), as_span(cu_seqlens), options, plan);
  }
  nb::dict out;
  out["ids"] = to_numpy(std::move(plan.ids));
  out["positions"] = to_numpy(std::move(plan.positions));
  out["parent"] = to_numpy(std::move(plan.parent));
  out["subtree_end"] = to_numpy(std::move(plan.subtree_end));
  out["gather"] = to_numpy(std::move(plan.gather));
  out["scatter"] = to_numpy(std::move(plan.scatter));
  out["last_rows"] = to_numpy(std::move(plan.last_rows));
  out["num_tokens"] = plan.num_tokens;
  out["num_unique"] = plan.num_unique;
  out["num_rows"] = plan.num_rows;
  out["folded"] = plan.folded;
  return out;
}

}  // namespace

void bind_fold(nb::module_& m) {
  m.def("fold", &fold, nb::arg("ids").noconvert(), nb::arg("positions").noconvert(),
        nb::arg("cu_seqlens").noconvert(), nb::arg("pad_to_multiple"), nb::arg("threshold"),
        "Folds a ragged batch (contiguous int32 arrays) into the compact trie layout. Returns a "
        "dict of int32 numpy arrays and counts; raises ValueError on malformed input.");
}

}  // namespace radix::python
