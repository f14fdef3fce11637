// Base64 (RFC 4648, with padding) for OpenAI's encoding_format "base64": the raw little-endian
// float32 bytes of an embedding.
#pragma once

#include <span>
#include <string>
#include <string_view>

namespace radix::server {

std::string base64_encode(std::string_view bytes);
std::string base64_encode_floats(std::span<const float> values);

}  // namespace radix::server
