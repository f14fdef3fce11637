#include "tokenizer/decoder.h"

#include <utility>

#include "tokenizer/byte_level.h"
#include "tokenizer/utf8.h"

namespace radix::tokenizer_detail {
namespace {

// Exactly one character, as UTF-8.
std::string one_char(const json& j, const char* key, const std::string& where) {
  const std::string s = json_string_field(j, key, where);
  check_utf8(s, (where + "." + key).c_str());
  if (s.empty() || utf8_length(static_cast<unsigned char>(s[0])) != s.size()) {
    json_fail(where + "." + key, "expected exactly one character, got \"" + s + "\"");
  }
  return s;
}

size_t count_field(const json& j, const char* key, const std::string& where) {
  const int64_t v = json_int(json_require(j, key, where), where + "." + key);
  if (v < 0) json_fail(where + "." + key, "must not be negative");
  return static_cast<size_t>(v);
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// The byte a "<0xAB>" token stands for, or -1. The reference parses the two characters after
// "0x" as a base-16 number, which also takes a '+' sign before a single digit.
int fallback_byte(const std::string& t) {
  if (t.size() != 6 || t.compare(0, 3, "<0x") != 0 || t[5] != '>') return -1;
  const int lo = hex_digit(t[4]);
  if (lo < 0) return -1;
  if (t[3] == '+') return lo;
  const int hi = hex_digit(t[3]);
  return hi < 0 ? -1 : hi * 16 + lo;
}

void byte_fallback(std::vector<std::string>& tokens) {
  std::vector<std::string> out;
  out.reserve(tokens.size());
  std::string bytes;
  auto flush = [&] {
    if (bytes.empty()) return;
    if (find_invalid_utf8(bytes) == std::string::npos) {
      out.push_back(bytes);
    } else {
      // Bytes that do not form valid UTF-8 become one U+FFFD each, as in the reference.
      for (size_t i = 0; i < bytes.size(); ++i) out.emplace_back("\xEF\xBF\xBD");
    }
    bytes.clear();
  };
  for (std::string& t : tokens) {
    const int b = fallback_byte(t);
    if (b >= 0) {
      bytes.push_back(static_cast<char>(b));
      continue;
    }
    flush();
    out.push_back(std::move(t));
  }
  flush();
  tokens = std::move(out);
}

// Takes up to `start` copies of `c` off the front and up to `stop` off the back (never past
// each other; the reference panics where they would cross).
void strip(std::string& t, const std::string& c, size_t start, size_t stop) {
  size_t b = 0, e = t.size();
  for (size_t i = 0; i < start && b + c.size() <= e && t.compare(b, c.size(), c) == 0; ++i) {
    b += c.size();
  }
  for (size_t i = 0; i < stop && e >= b + c.size() && t.compare(e - c.size(), c.size(), c) == 0;
       ++i) {
    e -= c.size();
  }
  t = t.substr(b, e - b);
}

void replace(std::string& t, const Pattern& pattern, const std::string& content) {
  std::string out;
  size_t prev = 0;
  bool any = false;
  pattern.find_all(t, [&](size_t b, size_t e) {
    out.append(t, prev, b - prev);
    out += content;
    prev = e;
    any = true;
  });
  if (!any) return;
  out.append(t, prev, std::string::npos);
  t = std::move(out);
}

// The replacement character becomes a space; in the first token it is dropped instead, unless
// the pre-tokenizer never prepends one.
void metaspace(std::vector<std::string>& tokens, const std::string& rep, PrependScheme scheme) {
  for (size_t i = 0; i < tokens.size(); ++i) {
    const bool drop = i == 0 && scheme != PrependScheme::kNever;
    std::string& t = tokens[i];
    if (t.find(rep) == std::string::npos) continue;
    std::string out;
    size_t prev = 0;
    for (size_t at = t.find(rep); at != std::string::npos; at = t.find(rep, at + rep.size())) {
      out.append(t, prev, at - prev);
      if (!drop) out.push_back(' ');
      prev = at + rep.size();
    }
    out.append(t, prev, std::string::npos);
    t = std::move(out);
  }
}

std::string join(const std::vector<std::string>& tokens, std::string_view sep) {
  std::string out;
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (i > 0) out.append(sep);
    out.append(tokens[i]);
  }
  return out;
}

}  // namespace

Decoder Decoder::from_json(const json& j) {
  Decoder d;
  if (j.is_null()) return d;
  d.present_ = true;
  d.add_steps(j, "decoder");
  return d;
}

void Decoder::add_steps(const json& j, const std::string& where) {
  const std::string type = json_string_field(j, "type", where);
  Step s;
  if (type == "Sequence") {
    const json& list = json_require(j, "decoders", where);
    if (!list.is_array()) json_fail(where + ".decoders", "expected an array");
    for (size_t i = 0; i < list.size(); ++i) {
      add_steps(list[i], where + ".decoders[" + std::to_string(i) + "]");
    }
    return;
  }
  if (type == "ByteLevel") {
    s.kind = Step::Kind::kByteLevel;
  } else if (type == "ByteFallback") {
    s.kind = Step::Kind::kByteFallback;
  } else if (type == "Fuse") {
    s.kind = Step::Kind::kFuse;
  } else if (type == "Strip") {
    s.kind = Step::Kind::kStrip;
    s.content = one_char(j, "content", where);
    s.start = count_field(j, "start", where);
    s.stop = count_field(j, "stop", where);
  } else if (type == "Replace") {
    s.kind = Step::Kind::kReplace;
    s.pattern = std::make_shared<Pattern>(
        Pattern::from_json(json_require(j, "pattern", where), where + ".pattern"));
    s.content = json_string_field(j, "content", where);
  } else if (type == "Metaspace") {
    s.kind = Step::Kind::kMetaspace;
    s.content = parse_metaspace_replacement(j, where);
    s.prepend = parse_prepend_scheme(j, where);
  } else {
    json_fail(where, "decoder type \"" + type +
                         "\" is not supported by radix (supported: ByteLevel, ByteFallback, Fuse, "
                         "Strip, Replace, Metaspace, Sequence, or none)");
  }
  steps_.push_back(std::move(s));
}

std::string Decoder::decode(std::vector<std::string> tokens) const {
  if (!present_) return utf8_lossy(join(tokens, " "));
  for (const Step& s : steps_) {
    switch (s.kind) {
      case Step::Kind::kByteLevel: {
        // Every token's characters back to bytes; the bytes of all tokens form one string.
        std::string bytes;
        for (const std::string& t : tokens) byte_level_decode_append(t, bytes);
        tokens.assign(1, utf8_lossy(bytes));
        break;
      }
      case Step::Kind::kByteFallback:
        byte_fallback(tokens);
        break;
      case Step::Kind::kFuse:
        tokens.assign(1, join(tokens, ""));
        break;
      case Step::Kind::kStrip:
        for (std::string& t : tokens) strip(t, s.content, s.start, s.stop);
        break;
      case Step::Kind::kReplace:
        for (std::string& t : tokens) replace(t, *s.pattern, s.content);
        break;
      case Step::Kind::kMetaspace:
        metaspace(tokens, s.content, s.prepend);
        break;
    }
  }
  return utf8_lossy(join(tokens, ""));
}

}  // namespace radix::tokenizer_detail
