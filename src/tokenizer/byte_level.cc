#include "tokenizer/byte_level.h"

#include "tokenizer/utf8.h"

namespace radix::tokenizer_detail {

std::string byte_level_encode(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char b : bytes) utf8_append(out, byte_to_char()[b]);
  return out;
}

void byte_level_decode_append(std::string_view token, std::string& out) {
  const size_t mark = out.size();
  for (size_t i = 0; i < token.size();) {
    char32_t cp;
    i += utf8_decode(token, i, cp);
    const int b = char_to_byte(cp);
    if (b < 0) {
      out.resize(mark);
      out.append(token);
      return;
    }
    out.push_back(static_cast<char>(b));
  }
}

}  // namespace radix::tokenizer_detail
