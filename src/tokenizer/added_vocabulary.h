// Added tokens (special or not): found in the text before the model sees it, as Hugging Face
// does: tokens with normalized = false in the raw input, the others in the normalised pieces.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "tokenizer/bpe_model.h"
#include "tokenizer/normalizer.h"
#include "tokenizer/piece.h"

namespace radix::tokenizer_detail {

struct AddedToken {
  std::string content;
  // What the id stands for in decode and id_to_token: the content, normalised when the token is
  // (the reference keeps the normalised form there, e.g. "▁hello" after Prepend("▁")).
  std::string text;
  int32_t id = -1;
  bool special = false;
  bool lstrip = false;
  bool rstrip = false;
  bool single_word = false;
  bool normalized = true;
};

class AddedVocabulary {
 public:
  // tokenizer.json's "added_tokens" (null or absent allowed). A token whose content is in the
  // model's vocabulary takes the vocabulary's id, as the reference gives it.
  static AddedVocabulary from_json(const json& j, const Normalizer& normalizer,
                                   const BpeModel& model);

  // Splits `text` around the tokens of one set (raw: normalized = false; else normalized = true).
  // Calls on_segment(begin, end, id) in order; id = -1 for text between tokens. Segments are
  // never empty.
  void split(std::string_view text, bool normalized_set,
             FunctionRef<void(size_t, size_t, int32_t)> on_segment) const;
  bool has_tokens(bool normalized_set) const {
    return !(normalized_set ? normalized_ : raw_).nodes.empty();
  }

  const AddedToken* by_id(int32_t id) const {
    auto it = by_id_.find(id);
    return it == by_id_.end() ? nullptr : &tokens_[it->second];
  }
  std::optional<int32_t> token_to_id(std::string_view content) const {
    auto it = by_content_.find(content);
    if (it == by_content_.end()) return std::nullopt;
    return it->second;
  }
  const std::vector<AddedToken>& tokens() const { return tokens_; }

 private:
  // A byte trie over token contents, for leftmost-longest matching.
  struct Trie {
    struct Node {
      std::vector<std::pair<unsigned char, int32_t>> next;
      int32_t token = -1;  // index into tokens_ when a content ends here
    };
    std::vector<Node> nodes;  // nodes[0] is the root when not empty
    bool first_byte[256] = {};
    void add(std::string_view content, int32_t token);
  };

  Trie raw_, normalized_;
  std::vector<AddedToken> tokens_;
  std::unordered_map<int32_t, size_t> by_id_;
  std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>> by_content_;
};

}  // namespace radix::tokenizer_detail
