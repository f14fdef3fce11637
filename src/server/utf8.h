// UTF-8 validation of request bodies, so bad bytes get a 422 naming where they are. The check
// itself is the tokenizer's (radix keeps one validator); this only gives it the server's shape.
#pragma once

#include <cstddef>
#include <optional>
#include <string_view>

#include "tokenizer/utf8.h"

namespace radix::server {

// The offset of the first byte that does not start or continue a well-formed UTF-8 sequence
// (RFC 3629: no overlongs, no surrogates, nothing above U+10FFFF); nullopt if all is well.
inline std::optional<size_t> find_invalid_utf8(std::string_view text) {
  const size_t bad = tokenizer_detail::find_invalid_utf8(text);
  if (bad == std::string_view::npos) return std::nullopt;
  return bad;
}

}  // namespace radix::server
