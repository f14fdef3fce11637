// Unicode normalisation (utf8proc) with the alignment back to the input text.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/json_access.h"
#include "tokenizer/piece.h"

namespace radix::tokenizer_detail {

// Text a normaliser rewrote, with per-byte input ranges.
struct NormalizedText {
  std::string text;
  std::vector<Span> align;
  Piece piece() const { return Piece{text, 0, align.data()}; }
};

class Normalizer {
 public:
  enum class Form { kNFC, kNFD, kNFKC, kNFKD };

  // tokenizer.json's "normalizer" (null allowed).
  static Normalizer from_json(const json& j);
  static Normalizer nfc() { return Normalizer({Form::kNFC}); }

  bool empty() const { return forms_.empty(); }
  // Normalises `in` into `out` and returns true, or returns false when `in` is already normal
  // (the common case, which costs no copy).
  bool normalize(const Piece& in, NormalizedText& out) const;
  // Normalised text alone (for added-token contents and tests).
  std::string normalize_string(std::string_view s) const;

 private:
  explicit Normalizer(std::vector<Form> forms) : forms_(std::move(forms)) {}
  Normalizer() = default;
  std::string apply(std::string_view s) const;

  std::vector<Form> forms_;  // applied in order
};

}  // namespace radix::tokenizer_detail
