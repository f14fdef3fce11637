// libFuzzer target: the JSON request parsing of every route. Any input must either parse into a
// request that satisfies the parser's promises or throw ApiError with a 4xx status; anything else
// (another exception, a crash, a sanitizer report) is a bug.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "server/api_error.h"
#include "server/requests.h"

namespace {

using namespace radix::server;

void check(bool ok) {
  if (!ok) std::abort();
}

void check_inputs(const std::vector<Input>& inputs, const RequestLimits& limits) {
  check(!inputs.empty());
  check(inputs.size() == 1 || inputs.size() <= limits.max_client_batch_size);
  for (const Input& in : inputs) {
    if (in.is_ids) {
      check(!in.ids.empty());
      for (int32_t id : in.ids) check(id >= 0);
    } else {
      check(!in.text.empty());
    }
  }
}

template <typename Fn>
void expect_parse_or_client_error(Fn fn) {
  try {
    fn();
  } catch (const ApiError& e) {
    check(e.status() >= 400 && e.status() < 500);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  const RequestLimits limits{.max_client_batch_size = 8};
  expect_parse_or_client_error([&] {
    const EmbedRequest r = parse_embed_request(body, limits);
    check_inputs(r.inputs, limits);
    if (r.dimensions) check(*r.dimensions >= 1);
  });
  expect_parse_or_client_error([&] {
    const OpenAIEmbeddingsRequest r = parse_openai_embeddings_request(body, limits);
    check_inputs(r.inputs, limits);
  });
  expect_parse_or_client_error([&] {
    const RerankRequest r = parse_rerank_request(body, limits);
    check(!r.texts.empty() && r.texts.size() <= limits.max_client_batch_size);
  });
  expect_parse_or_client_error([&] {
    const OpenAIRerankRequest r = parse_openai_rerank_request(body, limits);
    check(!r.documents.empty() && r.documents.size() <= limits.max_client_batch_size);
    if (r.top_n) check(*r.top_n >= 1);
  });
  expect_parse_or_client_error([&] {
    const SimilarityRequest r = parse_similarity_request(body, limits);
    check(!r.source_sentence.empty() && !r.sentences.empty());
    // The source sentence counts towards the batch limit with the sentences.
    check(r.sentences.size() + 1 <= limits.max_client_batch_size);
    for (const std::string& s : r.sentences) check(!s.empty());
  });
  expect_parse_or_client_error([&] {
    const PredictRequest r = parse_predict_request(body, limits);
    check(!r.inputs.empty());
    check(r.batched || r.inputs.size() == 1);
    for (const auto& [a, b] : r.inputs) check(!a.empty() && (!b || !b->empty()));
  });
  expect_parse_or_client_error([&] {
    const TokenizeRequest r = parse_tokenize_request(body, limits);
    check(!r.inputs.empty());
  });
  expect_parse_or_client_error([&] {
    const DecodeRequest r = parse_decode_request(body, limits);
    check(!r.ids.empty());
    for (const auto& ids : r.ids) check(!ids.empty());
  });
  return 0;
}
