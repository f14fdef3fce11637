// radix._core.fold: the fold plan (src/core/fold_plan.h) for Python.
#pragma once

#include <nanobind/nanobind.h>

namespace radix::python {

void bind_fold(nanobind::module_& m);

}  // namespace radix::python
