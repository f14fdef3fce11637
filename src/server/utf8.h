// UTF-8 validation of request bodies, so bad bytes get a 422 naming where they are.
#pragma once

#include <cstddef>
#include <optional>
#include <string_view>

namespace radix::server {

// The offset of the first byte that does not start or continue a well-formed UTF-8 sequence
// (RFC 3629: no overlongs, no surrogates, nothing above U+10FFFF); nullopt if all is well.
std::optional<size_t> find_invalid_utf8(std::string_view text);

}  // namespace radix::server
