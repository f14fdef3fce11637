// radix._core: the native half of the radix Python package. The Python modules in radix/ convert
// user input (numpy arrays, torch tensors, any integer dtype) to what these functions take.
#include <nanobind/nanobind.h>

#include "engine_binding.h"
#include "fold_binding.h"

NB_MODULE(_core, m) {
  m.doc() = "radix native core (fold plan, engine); use the radix package, not this module";
  radix::python::bind_fold(m);
#if RADIX_PYTHON_ENGINE
  radix::python::bind_engine(m);
#endif
}
