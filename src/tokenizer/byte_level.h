// GPT-2's byte-level alphabet: every byte is shown as a printable code point, so any byte string
// is a string of vocabulary characters.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace radix::tokenizer_detail {

// Printable bytes ('!'..'~', 0xA1..0xAC, 0xAE..0xFF) stand for themselves; the other 68 bytes take
// code points 256, 257, ... in byte order.
inline const std::array<char32_t, 256>& byte_to_char() {
  static const std::array<char32_t, 256> table = [] {
    std::array<char32_t, 256> t{};
    char32_t next = 256;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
      t[b] = printable ? static_cast<char32_t>(b) : next++;
    }
    return t;
  }();
  return table;
}

// Inverse of byte_to_char: code point -> byte, or -1 for code points outside the alphabet.
inline int char_to_byte(char32_t cp) {
  static const std::array<int16_t, 324> table = [] {
    std::array<int16_t, 324> t;
    t.fill(-1);
    for (int b = 0; b < 256; ++b) t[byte_to_char()[b]] = static_cast<int16_t>(b);
    return t;
  }();
  return cp < table.size() ? table[cp] : -1;
}

// The byte-level spelling of raw bytes (what a byte-level vocabulary's token strings look like).
std::string byte_level_encode(std::string_view bytes);

// The ByteLevel decoder for one token: its bytes if every character is in the alphabet, else the
// token's own UTF-8 unchanged.
void byte_level_decode_append(std::string_view token, std::string& out);

}  // namespace radix::tokenizer_detail
