// Post-processors: the special tokens added around one sequence or a pair.
#pragma once

#include <cstdint>
#include <vector>

#include "tokenizer/json_access.h"

namespace radix::tokenizer_detail {

class PostProcessor {
 public:
  // One element of a template: a run of special token ids, or sequence A (0) / B (1).
  struct Item {
    int sequence = -1;  // 0 = A, 1 = B, -1 = special tokens
    std::vector<int32_t> ids;
  };

  // tokenizer.json's "post_processor" (null allowed).
  static PostProcessor from_json(const json& j);

  bool adds_tokens() const { return has_template_; }
  size_t added_count(bool pair) const;
  // The template for one sequence or a pair (only meaningful when adds_tokens()).
  const std::vector<Item>& items(bool pair) const { return pair ? pair_ : single_; }

 private:
  void add(const json& j, const std::string& where);
  bool has_template_ = false;
  std::vector<Item> single_, pair_;
};

}  // namespace radix::tokenizer_detail
