// A reranker's prompt template: how a (query, document, instruction) becomes the text the model
// scores. It is a list of segments, each tokenized on its own (no special tokens added) and the
// ids concatenated, as LLM rerankers' reference code does (Qwen3-Reranker tokenizes its system
// prefix and its suffix apart from the body; bge-reranker-v2-gemma tokenizes "A: {query}", "\n",
// "B: {passage}", "\n" and its prompt one by one). Segments without a placeholder are tokenized
// once, so every pair starts with the same ids and the prefix folds (prefix dedup).
//
// JSON form (a model folder's radix_rerank_template.json, or --rerank-template; docs/models.md):
//   {"segments": ["<fixed prefix>", "<Query>: {query}\n<Document>: {document}", "<suffix>"],
//    "default_instruction": "..."}
// Placeholders: {query} and {document} exactly once each, {instruction} at most once (then
// "default_instruction" is required). Any other {word} is refused as a likely typo.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace radix {

class RerankTemplate {
 public:
  enum class Slot : uint8_t { kNone, kQuery, kDocument, kInstruction };
  struct Piece {
    Slot slot = Slot::kNone;  // kNone: `text` is literal
    std::string text;
  };
  using Segment = std::vector<Piece>;

  // Throws std::invalid_argument naming `origin` for a malformed template.
  RerankTemplate(std::vector<std::string> segments, std::string default_instruction,
                 std::string origin);

  const std::vector<Segment>& segments() const { return segments_; }
  bool fixed(size_t segment) const;  // no placeholder: the same text for every pair
  std::string fill(size_t segment, std::string_view instruction, std::string_view query,
                   std::string_view document) const;
  size_t document_segment() const { return document_segment_; }  // the one holding {document}
  bool takes_instruction() const { return takes_instruction_; }
  const std::string& default_instruction() const { return default_instruction_; }
  // Where it came from: "qwen3-reranker (built in)", a file path, or "--rerank-template".
  const std::string& origin() const { return origin_; }

 private:
  std::vector<Segment> segments_;
  std::string default_instruction_;
  std::string origin_;
  size_t document_segment_ = 0;
  bool takes_instruction_ = false;
};

// The file a model folder may hold its template in.
inline constexpr std::string_view kRerankTemplateFile = "radix_rerank_template.json";

// Qwen3-Reranker's template (model/prompts.h): prefix, body, suffix; its default instruction.
RerankTemplate qwen3_rerank_template();

// Parses the JSON form; throws std::invalid_argument naming `origin`.
RerankTemplate parse_rerank_template(std::string_view json_text, const std::string& origin);

// --rerank-template's value: inline JSON when it starts with '{' (after blanks), else a path to a
// JSON file. Throws std::invalid_argument naming the flag (and the file).
RerankTemplate load_rerank_template(const std::string& file_or_json);

}  // namespace radix
