// Pre-tokenizers: cut normalised text into the words the BPE model sees.
#pragma once

#include <string>
#include <vector>

#include "tokenizer/json_access.h"
#include "tokenizer/piece.h"
#include "tokenizer/regex.h"

namespace radix::tokenizer_detail {

enum class SplitBehavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };

class PreTokenizer {
 public:
  // tokenizer.json's "pre_tokenizer" (null allowed).
  static PreTokenizer from_json(const json& j);

  // True when a ByteLevel step ends the chain: words reach the model as raw bytes, to be read in
  // the byte-level alphabet.
  bool byte_level() const { return byte_level_; }

  // Calls on_word for every word of `piece`, in order. Words are never empty.
  void split(const Piece& piece, FunctionRef<void(const Piece&)> on_word) const;

 private:
  struct Step {
    // A regex split, or (regex == nullptr) ByteLevel's "prefix a space" step.
    std::shared_ptr<Regex> regex;
    SplitBehavior behavior = SplitBehavior::kIsolated;
    bool invert = false;
    bool add_prefix_space = false;
  };
  void add_steps(const json& j, const std::string& where, bool last);
  void run(size_t step, const Piece& piece, FunctionRef<void(const Piece&)> on_word) const;
  void run_split(const Step& s, size_t step, const Piece& piece,
                 FunctionRef<void(const Piece&)> on_word) const;

  std::vector<Step> steps_;
  bool byte_level_ = false;
};

}  // namespace radix::tokenizer_detail
