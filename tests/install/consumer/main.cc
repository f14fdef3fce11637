// A program outside radix's tree: only the public headers, only the installed libraries.
#include <cstdio>

#include "service/runtime.h"

int main() {
  radix::service::RuntimeOptions options;
  options.model = "demo";
  options.threads = 1;
  options.max_batch_tokens = 1024;
  auto runtime = radix::service::Runtime::build(options);
  radix::service::EmbedRequest request;
  request.inputs = {radix::service::Input::of_text("hello from outside")};
  const auto result = runtime->service().embed(request);
  std::printf("embedding dim %zu\n", result.embeddings.at(0).values.size());
  return 0;
}
