// Decoders: token strings back to text, one step after another as tokenizer.json chains them
// (ByteLevel, ByteFallback, Fuse, Strip, Replace, Metaspace, Sequence).
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "tokenizer/json_access.h"
#include "tokenizer/normalizer.h"
#include "tokenizer/pre_tokenizer.h"

namespace radix::tokenizer_detail {

class Decoder {
 public:
  // tokenizer.json's "decoder" (null allowed: tokens are joined with spaces).
  static Decoder from_json(const json& j);

  // The text of a list of token strings (valid UTF-8; invalid byte sequences the steps produce
  // become U+FFFD).
  std::string decode(std::vector<std::string> tokens) const;

 private:
  struct Step {
    enum class Kind { kByteLevel, kByteFallback, kFuse, kStrip, kReplace, kMetaspace } kind;
    std::string content;               // kStrip: the character; kReplace: the replacement;
                                       // kMetaspace: the replacement character
    size_t start = 0, stop = 0;        // kStrip: how many to take off each end
    std::shared_ptr<Pattern> pattern;  // kReplace
    PrependScheme prepend = PrependScheme::kAlways;  // kMetaspace
  };
  void add_steps(const json& j, const std::string& where);

  std::vector<Step> steps_;
  bool present_ = false;  // false: no decoder in tokenizer.json
};

}  // namespace radix::tokenizer_detail
