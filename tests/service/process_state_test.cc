// A library leaves the process as it found it: OpenBLAS's thread count (numpy and others in the
// process may share that OpenBLAS) is the caller's before, after and between radix's forwards.
#include <cblas.h>
#include <gtest/gtest.h>

#include "service/runtime.h"

namespace radix::service {
namespace {

TEST(ProcessState, OpenblasThreadCountIsTheCallers) {
  openblas_set_num_threads(2);
  const int callers = openblas_get_num_threads();  // what OpenBLAS made of it on this machine
  RuntimeOptions o;
  o.model = "demo";
  o.threads = 2;
  o.max_batch_tokens = 4096;
  auto runtime = Runtime::build(o);
  EmbedRequest r;
  for (int i = 0; i < 8; ++i) r.inputs.push_back(Input::of_text("some text " + std::to_string(i)));
  runtime->service().embed(r);
  EXPECT_EQ(openblas_get_num_threads(), callers);
  openblas_set_num_threads(1);
  runtime->service().embed(r);
  EXPECT_EQ(openblas_get_num_threads(), 1);
}

}  // namespace
}  // namespace radix::service
