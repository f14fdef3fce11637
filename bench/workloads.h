// The benchmark workloads of docs docs/benchmarks.md, generated deterministically from a seed.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/ragged_batch.h"

namespace radix::bench {

struct Workload {
  std::string name;  // canonical spec, e.g. "syn:B=32,P=2048,S=256"
  RaggedBatch batch;
  // A stream workload: batches run one after another (one request at a time); `batch` then holds
  // them all together. Empty for the one-batch workloads.
  std::vector<RaggedBatch> stream;
};

// Token ids are drawn from [100, 150000), cut to [100, vocab_size) when vocab_size is set and
// smaller (Mistral's 32,000, Llama-3's 128,256), so that a model of any family can run every
// workload; a vocabulary of 150,000 or more (Qwen3, Qwen2, Gemma2) gets the same ids as vocab 0.

// B sequences sharing one random prefix of P tokens, each with its own random suffix of S tokens.
RaggedBatch make_syn(int batch, int prefix, int suffix, uint64_t seed = 1, int32_t vocab_size = 0);
// A 48-token system prompt; G groups, each a 6-16 token query shared by D documents of 40-120
// tokens; every sequence ends with the same 10 tokens.
RaggedBatch make_rerank_like(int groups, int docs, uint64_t seed = 1, int32_t vocab_size = 0);
// B sequences of L tokens whose first P tokens are shared (the wide fold-plan workload).
RaggedBatch make_wide(int batch, int length, int prefix, uint64_t seed = 1, int32_t vocab_size = 0);

// N requests, one sequence each, sent one at a time: a shared prefix of P tokens and S own tokens
// (few-shot classification; the prefix cache's workload, docs/prefix_cache.md).
std::vector<RaggedBatch> make_stream(int requests, int prefix, int suffix, uint64_t seed = 1,
                                     int32_t vocab_size = 0);

// Parses "syn:B=..,P=..,S=..", "rerank-like:G=..,D=..", "wide:B=..,L=..,P=..",
// "stream:P=..,S=..,N=.." (optionally ",seed=N"). Throws std::invalid_argument naming the problem.
Workload parse_workload(const std::string& spec, int32_t vocab_size = 0);

}  // namespace radix::bench
