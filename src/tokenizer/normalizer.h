// Normalisers: Unicode forms (utf8proc), Replace and Prepend, alone or in a Sequence, with the
// alignment back to the input text.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/json_access.h"
#include "tokenizer/piece.h"
#include "tokenizer/regex.h"

namespace radix::tokenizer_detail {

// Text a normaliser rewrote, with per-byte input ranges.
struct NormalizedText {
  std::string text;
  std::vector<Span> align;
  Piece piece() const { return Piece{text, 0, align.data()}; }
};

// The input range Hugging Face's NormalizedString keeps for byte i of `p`: a byte of untouched
// text stands for its whole character.
Span byte_alignment(const Piece& p, size_t i);

// Appends bytes [begin, end) of `p` (whole characters) to `out` with their alignment.
void append_aligned(const Piece& p, size_t begin, size_t end, NormalizedText& out);

// A String or Regex pattern of tokenizer.json ({"String": ...} or {"Regex": ...}), found the way
// the reference finds them: leftmost, non-overlapping, empty matches allowed.
class Pattern {
 public:
  static Pattern from_json(const json& j, const std::string& where);
  void find_all(std::string_view text, FunctionRef<void(size_t, size_t)> on_match) const;

 private:
  std::string literal_;           // a non-empty String pattern (found with memchr/memcmp)
  std::shared_ptr<Regex> regex_;  // a Regex pattern, or an empty String pattern
};

class Normalizer {
 public:
  enum class Form { kNFC, kNFD, kNFKC, kNFKD };

  // tokenizer.json's "normalizer" (null allowed).
  static Normalizer from_json(const json& j);
  static Normalizer nfc();

  bool empty() const { return steps_.empty(); }
  // Normalises `in` into `out` and returns true, or returns false when `in` is already normal
  // (the common case for Unicode forms, which costs no copy).
  bool normalize(const Piece& in, NormalizedText& out) const;
  // Normalised text alone (for added-token contents and tests).
  std::string normalize_string(std::string_view s) const;

 private:
  struct Step {
    enum class Kind { kUnicode, kReplace, kPrepend } kind = Kind::kUnicode;
    Form form = Form::kNFC;            // kUnicode
    std::shared_ptr<Pattern> pattern;  // kReplace
    std::string content;               // kReplace: the replacement; kPrepend: the prefix
  };
  Normalizer() = default;
  void add_steps(const json& j, const std::string& where);
  // One step; false when it leaves the text unchanged (and `out` untouched).
  static bool apply(const Step& s, const Piece& in, NormalizedText& out);

  std::vector<Step> steps_;  // applied in order
};

}  // namespace radix::tokenizer_detail
