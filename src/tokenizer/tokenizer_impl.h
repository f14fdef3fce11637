// What a loaded tokenizer holds: one object per tokenizer.json component.
#pragma once

#include <optional>
#include <string_view>

#include "tokenizer/added_vocabulary.h"
#include "tokenizer/bpe_model.h"
#include "tokenizer/decoder.h"
#include "tokenizer/json_access.h"
#include "tokenizer/normalizer.h"
#include "tokenizer/post_processor.h"
#include "tokenizer/pre_tokenizer.h"
#include "tokenizer/tokenizer.h"

namespace radix::tokenizer_detail {

struct TokenizerImpl {
  Normalizer normalizer = Normalizer::from_json(nullptr);
  PreTokenizer pre_tokenizer;
  BpeModel model;
  AddedVocabulary added;
  PostProcessor post_processor;
  Decoder decoder = Decoder::from_json(nullptr);
  Truncation default_truncation;  // tokenizer.json's "truncation"

  // Parses a whole tokenizer.json document.
  static std::shared_ptr<const TokenizerImpl> from_json(const json& doc);

  // Tokens of one text, before truncation and post-processing.
  void encode_raw(std::string_view text, Encoding& out) const;
};

}  // namespace radix::tokenizer_detail
