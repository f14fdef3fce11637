// radix._core.Engine: the library core (src/service) for Python.
#pragma once

#include <nanobind/nanobind.h>

namespace radix::python {

void bind_engine(nanobind::module_& m);

}  // namespace radix::python
