// The prompt formats of Qwen3-Embedding and Qwen3-Reranker (exact strings: docs/benchmarks.md).
#pragma once

#include <string>
#include <string_view>

namespace radix {

inline constexpr std::string_view kRerankPrefix =
    "<|im_start|>system\nJudge whether the Document meets the requirements based on the Query and "
    "the Instruct provided. Note that the answer can only be \"yes\" or \"no\".<|im_end|>\n"
    "<|im_start|>user\n";
inline constexpr std::string_view kRerankSuffix =
    "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n";
inline constexpr std::string_view kDefaultRerankInstruction =
    "Given a web search query, retrieve relevant passages that answer the query";
inline constexpr std::string_view kDefaultEmbeddingInstruction =
    "Given a web search query, retrieve relevant passages that answer the query";

// prefix + "<Instruct>: {instruction}\n<Query>: {query}\n<Document>: {doc}" + suffix
std::string format_rerank_prompt(std::string_view instruction, std::string_view query,
                                 std::string_view document);
// "Instruct: {instruction}\nQuery:{query}" (no space after "Query:")
std::string format_embedding_query(std::string_view instruction, std::string_view query);

}  // namespace radix
