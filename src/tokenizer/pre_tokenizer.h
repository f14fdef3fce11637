// Pre-tokenizers: cut normalised text into the words the BPE model sees.
#pragma once

#include <string>
#include <vector>

#include "tokenizer/json_access.h"
#include "tokenizer/piece.h"
#include "tokenizer/regex.h"

namespace radix::tokenizer_detail {

enum class SplitBehavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };

// When Metaspace puts its replacement in front of a piece that does not start with one: always,
// only on the piece that starts the input, or never.
enum class PrependScheme { kAlways, kFirst, kNever };
// Metaspace's fields (pre-tokenizer and decoder alike): the scheme, from prepend_scheme or the
// older add_prefix_space; the replacement, exactly one character.
PrependScheme parse_prepend_scheme(const json& j, const std::string& where);
std::string parse_metaspace_replacement(const json& j, const std::string& where);

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
    enum class Kind { kSplit, kByteLevelPrefix, kMetaspace } kind = Kind::kSplit;
    std::shared_ptr<Regex> regex;  // kSplit
    SplitBehavior behavior = SplitBehavior::kIsolated;
    bool invert = false;
    std::string replacement;  // kMetaspace: the character that stands for a space, as UTF-8
    PrependScheme prepend = PrependScheme::kAlways;
    bool split = true;  // kMetaspace: cut before every replacement character
  };
  void add_steps(const json& j, const std::string& where, bool last);
  void run(size_t step, const Piece& piece, FunctionRef<void(const Piece&)> on_word) const;
  void run_split(const Step& s, size_t step, const Piece& piece,
                 FunctionRef<void(const Piece&)> on_word) const;
  void run_metaspace(const Step& s, size_t step, const Piece& piece,
                     FunctionRef<void(const Piece&)> on_word) const;

  std::vector<Step> steps_;
  bool byte_level_ = false;
};

}  // namespace radix::tokenizer_detail
