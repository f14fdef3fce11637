// UTF-8 checks and repairs. Validation is strict (RFC 3629: no overlongs, no surrogates,
// nothing above U+10FFFF), as Rust's str is.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace radix::tokenizer_detail {

// Offset of the first byte that is not part of a valid UTF-8 sequence, or npos.
size_t find_invalid_utf8(std::string_view s);

// Throws TokenizerError "<what>: invalid UTF-8 at byte N" when `s` is not valid UTF-8.
void check_utf8(std::string_view s, const char* what);

// Replaces every maximal invalid subsequence with U+FFFD (the Unicode "substitution of maximal
// subparts" practice, as Rust's String::from_utf8_lossy does).
std::string utf8_lossy(std::string_view bytes);

// Decodes the code point at s[i] of valid UTF-8; returns its length in bytes.
inline size_t utf8_decode(std::string_view s, size_t i, char32_t& cp) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  if (b0 < 0x80) {
    cp = b0;
    return 1;
  }
  if (b0 < 0xE0) {
    cp = (char32_t{b0 & 0x1Fu} << 6) | (static_cast<unsigned char>(s[i + 1]) & 0x3Fu);
    return 2;
  }
  if (b0 < 0xF0) {
    cp = (char32_t{b0 & 0x0Fu} << 12) | ((static_cast<unsigned char>(s[i + 1]) & 0x3Fu) << 6) |
         (static_cast<unsigned char>(s[i + 2]) & 0x3Fu);
    return 3;
  }
  cp = (char32_t{b0 & 0x07u} << 18) | ((static_cast<unsigned char>(s[i + 1]) & 0x3Fu) << 12) |
       ((static_cast<unsigned char>(s[i + 2]) & 0x3Fu) << 6) |
       (static_cast<unsigned char>(s[i + 3]) & 0x3Fu);
  return 4;
}

inline size_t utf8_length(unsigned char lead) {
  return lead < 0x80 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4;
}

void utf8_append(std::string& out, char32_t cp);

inline bool is_ascii(std::string_view s) {
  unsigned char acc = 0;
  for (char c : s) acc |= static_cast<unsigned char>(c);
  return acc < 0x80;
}

}  // namespace radix::tokenizer_detail
