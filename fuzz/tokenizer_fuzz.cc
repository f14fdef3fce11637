// libFuzzer target: arbitrary bytes through Tokenizer::encode / encode_pair / decode.
// Invalid UTF-8 must be a TokenizerError, never a crash; valid text must give in-range offsets
// and, when it holds no added token, decode back to its NFC form.
//
// Tokenizer: $RADIX_FUZZ_TOKENIZER (tokenizer.json, model folder, or "builtin"), else the Qwen3
// one in ../shared/assets, else a small built-in byte-level BPE.
#include <utf8proc.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "tokenizer/tokenizer.h"

namespace {

std::unique_ptr<radix::Tokenizer> g_tokenizer;
// True when the tokenizer puts a space in front of text (ByteLevel add_prefix_space): decoding
// then gives that space back too.
bool g_prefix_space = false;

std::string builtin_tokenizer_json() {
  // Byte tokens spelled in the GPT-2 alphabet, a few merges, two added tokens, a template.
  std::string vocab;
  int next = 256;
  for (int b = 0; b < 256; ++b) {
    const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
    const int cp = printable ? b : next++;
    char buf[32];
    std::snprintf(buf, sizeof buf, "\"\\u%04x\": %d,", cp, b);
    vocab += buf;
  }
  vocab += "\"ab\": 256, \"abc\": 257, \"\\u0120a\": 258";
  return R"({"added_tokens": [{"id": 300, "content": "<|end|>", "special": true},
                              {"id": 301, "content": "<m>", "special": true, "lstrip": true,
                               "rstrip": true}],
             "normalizer": {"type": "NFC"},
             "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": true, "use_regex": true},
             "post_processor": {"type": "TemplateProcessing",
               "single": [{"Sequence": {"id": "A"}}, {"SpecialToken": {"id": "<|end|>"}}],
               "pair": [{"Sequence": {"id": "A"}}, {"Sequence": {"id": "B"}},
                        {"SpecialToken": {"id": "<|end|>"}}],
               "special_tokens": {"<|end|>": {"id": "<|end|>", "ids": [300]}}},
             "decoder": {"type": "ByteLevel"},
             "model": {"type": "BPE", "merges": ["a b", "ab c", "\u0120 a"], "vocab": {)" +
         vocab + "}}}";
}

std::string nfc(std::string_view s) {
  utf8proc_uint8_t* out = nullptr;
  const auto n = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(s.data()),
                              static_cast<utf8proc_ssize_t>(s.size()), &out,
                              static_cast<utf8proc_option_t>(UTF8PROC_STABLE | UTF8PROC_COMPOSE));
  std::string r = n >= 0 ? std::string(reinterpret_cast<char*>(out), static_cast<size_t>(n)) : "";
  std::free(out);
  return r;
}

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "tokenizer_fuzz: check failed: %s\n", what);
    std::abort();
  }
}

void check_offsets(const radix::Encoding& e, size_t len_a, size_t len_b) {
  check(e.ids.size() == e.offsets.size(), "one offset per id");
  for (const auto& [b, end] : e.offsets) {
    check(b <= end && end <= std::max(len_a, len_b), "offsets inside the input");
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  namespace fs = std::filesystem;
  const char* env = std::getenv("RADIX_FUZZ_TOKENIZER");
  const fs::path qwen = fs::path(RADIX_SOURCE_DIR).parent_path() / "shared" / "assets" /
                        "qwen3-embedding-0.6b" / "tokenizer.json";
  if (env && std::string_view(env) == "builtin") {
    g_tokenizer =
        std::make_unique<radix::Tokenizer>(radix::Tokenizer::from_json(builtin_tokenizer_json()));
    std::fprintf(stderr, "tokenizer_fuzz: built-in tokenizer\n");
  } else if (env && *env) {
    g_tokenizer = std::make_unique<radix::Tokenizer>(radix::Tokenizer::from_path(env));
    std::fprintf(stderr, "tokenizer_fuzz: tokenizer %s\n", env);
  } else if (fs::exists(qwen)) {
    g_tokenizer = std::make_unique<radix::Tokenizer>(radix::Tokenizer::from_file(qwen.string()));
    std::fprintf(stderr, "tokenizer_fuzz: tokenizer %s\n", qwen.c_str());
  } else {
    g_tokenizer =
        std::make_unique<radix::Tokenizer>(radix::Tokenizer::from_json(builtin_tokenizer_json()));
    std::fprintf(stderr, "tokenizer_fuzz: built-in tokenizer\n");
  }
  g_prefix_space = g_tokenizer->decode(g_tokenizer->encode("a", false).ids, false) == " a";
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const radix::Tokenizer& tok = *g_tokenizer;
  const uint8_t flags = data[0];
  const std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  const bool special = flags & 1;
  radix::Truncation trunc;
  if (flags & 2) {
    trunc.max_length = 2 + (flags >> 4);
    trunc.side = (flags & 4) ? radix::TruncationSide::kLeft : radix::TruncationSide::kRight;
  }
  try {
    if (flags & 8) {
      const size_t cut = text.size() / 2;
      const radix::Encoding e =
          tok.encode_pair(text.substr(0, cut), text.substr(cut), special, trunc);
      check_offsets(e, cut, text.size() - cut);
      if (trunc.max_length) check(e.ids.size() <= trunc.max_length, "pair truncated");
      return 0;
    }
    const radix::Encoding e = tok.encode(text, special, trunc);
    check_offsets(e, text.size(), 0);
    if (trunc.max_length) check(e.ids.size() <= trunc.max_length, "truncated");
    const std::string decoded = tok.decode(e.ids, false);
    // Byte-level BPE is lossless up to normalisation; added tokens can change how NFC sees
    // their neighbours, so the round trip is only checked on text without '<'.
    if (!special && !trunc.max_length && text.find('<') == std::string_view::npos) {
      const bool prefixed = g_prefix_space && !text.empty() && text[0] != ' ';
      check(decoded == (prefixed ? " " : "") + nfc(text), "decode(encode(x)) == NFC(x)");
    }
  } catch (const radix::TokenizerError&) {
    // Invalid UTF-8 or max_length below the template's special tokens: errors, not crashes.
  }
  return 0;
}
