// Hugging Face tokenizer.json (BPE: byte-level, or SentencePiece-style with byte fallback) in
// C++: loads a tokenizer.json, or a model folder with vocab.json + merges.txt +
// tokenizer_config.json, and encodes exactly as Hugging Face `tokenizers` does.
//
// Supported components (anything else is rejected at load time with a TokenizerError naming it):
//   normalizer:     null, NFC, NFD, NFKC, NFKD, Replace (String or Regex pattern), Prepend,
//                   Sequence of those
//   pre_tokenizer:  null, Split (String or Regex pattern, any behaviour, invert), ByteLevel
//                   (add_prefix_space, use_regex), Metaspace (replacement, prepend_scheme
//                   always/first/never, split), Sequence (ByteLevel, if present, must be last)
//   model:          BPE (vocab, merges as "a b" strings or [a, b] pairs, ignore_merges,
//                   byte_fallback, unk_token, fuse_unk; dropout must be null or 0)
//   added_tokens:   special or not, lstrip, rstrip, single_word, normalized
//   post_processor: null, TemplateProcessing, ByteLevel, BertProcessing, RobertaProcessing,
//                   Sequence (at most one of them adding tokens)
//   decoder:        null, ByteLevel, ByteFallback, Fuse, Strip, Replace, Metaspace, Sequence
// `truncation` in tokenizer.json is honoured as the default truncation; `padding` is ignored
// because radix batches are ragged and never padded.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace radix {

class TokenizerError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

enum class TruncationSide { kRight, kLeft };

struct Truncation {
  size_t max_length = 0;  // 0 = none
  TruncationSide side = TruncationSide::kRight;
};

struct Encoding {
  std::vector<int32_t> ids;
  // Byte offsets into the input text; (0, 0) for tokens the post-processor added. For encode_pair
  // the offsets of the second sequence's tokens are into the second text.
  std::vector<std::pair<size_t, size_t>> offsets;
};

namespace tokenizer_detail {
struct TokenizerImpl;
}

// Immutable after loading; every method is const and safe to call from many threads at once.
// Copies share the loaded tables.
class Tokenizer {
 public:
  static Tokenizer from_json(std::string_view tokenizer_json);  // contents of a tokenizer.json
  static Tokenizer from_file(const std::string& tokenizer_json_path);
  // A model folder: tokenizer.json, or else vocab.json + merges.txt + tokenizer_config.json.
  static Tokenizer from_directory(const std::string& dir);
  // from_directory for a folder, else from_file; TokenizerError when nothing is at `path`.
  static Tokenizer from_path(const std::string& path);

  // Invalid UTF-8 in `text` throws TokenizerError naming the byte offset.
  Encoding encode(std::string_view text, bool add_special_tokens, const Truncation& t = {}) const;
  Encoding encode_pair(std::string_view a, std::string_view b, bool add_special_tokens,
                       const Truncation& t = {}) const;
  // num_threads = 0: one per hardware thread. Results are in input order.
  std::vector<Encoding> encode_batch(const std::vector<std::string>& texts, bool add_special_tokens,
                                     const Truncation& t = {}, int num_threads = 0) const;
  // Ids outside the vocabulary throw TokenizerError.
  std::string decode(std::span<const int32_t> ids, bool skip_special_tokens) const;

  std::optional<int32_t> token_to_id(std::string_view token) const;  // vocab or added token
  std::optional<std::string> id_to_token(int32_t id) const;
  int32_t vocab_size() const;  // including added tokens
  // Tokens the post-processor adds to one sequence (is_pair = false) or to a pair.
  size_t num_special_tokens_to_add(bool is_pair) const;

 private:
  explicit Tokenizer(std::shared_ptr<const tokenizer_detail::TokenizerImpl> impl);
  std::shared_ptr<const tokenizer_detail::TokenizerImpl> impl_;
};

}  // namespace radix
