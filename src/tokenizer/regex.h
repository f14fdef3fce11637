// PCRE2 (UTF + UCP, JIT-compiled) for the pre-tokenizer split patterns.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

#include "tokenizer/piece.h"

struct pcre2_real_code_8;

namespace radix::tokenizer_detail {

class Regex {
 public:
  // `literal`: the pattern is a plain string to find, not a regular expression.
  // Throws TokenizerError naming `where` when the pattern does not compile.
  Regex(const std::string& pattern, bool literal, const std::string& where);

  // Calls on_match(begin, end) for every non-overlapping match in `subject`, left to right.
  // `subject` must be valid UTF-8 (it is not checked again). Lookarounds see only `subject`.
  void find_all(std::string_view subject, FunctionRef<void(size_t, size_t)> on_match) const;

  // True if the pattern matches a prefix of `subject` (an anchored match).
  bool matches_prefix(std::string_view subject) const;

 private:
  std::shared_ptr<pcre2_real_code_8> code_;
};

}  // namespace radix::tokenizer_detail
