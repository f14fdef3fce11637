#include "tokenizer/regex.h"

#include <pcre2.h>

#include <memory>

#include "tokenizer/tokenizer.h"

namespace radix::tokenizer_detail {
namespace {

// Match data and the JIT stack are not tied to a pattern, so one set per thread serves every
// Regex. The JIT stack grows up to 16 MiB so that very long runs of one character class (a
// megabyte of letters) still match instead of failing on the default 32 KiB.
struct ThreadMatchState {
  pcre2_match_data* md = pcre2_match_data_create(32, nullptr);
  pcre2_jit_stack* stack = pcre2_jit_stack_create(size_t{32} << 10, size_t{16} << 20, nullptr);
  pcre2_match_context* ctx = pcre2_match_context_create(nullptr);
  ThreadMatchState() {
    if (ctx && stack) pcre2_jit_stack_assign(ctx, nullptr, stack);
  }
  ~ThreadMatchState() {
    pcre2_match_context_free(ctx);
    pcre2_jit_stack_free(stack);
    pcre2_match_data_free(md);
  }
};

ThreadMatchState& thread_state() {
  thread_local ThreadMatchState state;
  if (!state.md || !state.ctx) throw TokenizerError("regex: out of memory for PCRE2 match data");
  return state;
}

[[noreturn]] void match_failed(int rc) {
  PCRE2_UCHAR buf[256];
  pcre2_get_error_message(rc, buf, sizeof buf);
  throw TokenizerError(std::string("regex: match failed: ") + reinterpret_cast<char*>(buf));
}

}  // namespace

Regex::Regex(const std::string& pattern, bool literal, const std::string& where) {
  int err = 0;
  PCRE2_SIZE err_offset = 0;
  uint32_t options = PCRE2_UTF | PCRE2_UCP;
  if (literal) options = PCRE2_UTF | PCRE2_LITERAL;
  pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                                   options, &err, &err_offset, nullptr);
  if (!code) {
    PCRE2_UCHAR buf[256];
    pcre2_get_error_message(err, buf, sizeof buf);
    throw TokenizerError("tokenizer.json: " + where + ": pattern does not compile at offset " +
                         std::to_string(err_offset) + ": " + reinterpret_cast<char*>(buf));
  }
  // JIT is an optimisation: without it (e.g. a platform PCRE2 lacks it) matching still works.
  pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
  code_.reset(code, pcre2_code_free);
}

void Regex::find_all(std::string_view subject, FunctionRef<void(size_t, size_t)> on_match) const {
  ThreadMatchState& st = thread_state();
  const auto* s = reinterpret_cast<PCRE2_SPTR>(subject.data());
  const size_t n = subject.size();
  // The reference's iteration (Oniguruma's find_iter): search from the end of the last match; an
  // empty match right where the last match ended is skipped by moving on one character.
  size_t start = 0;
  size_t last_match_end = SIZE_MAX;
  while (start <= n) {
    const int rc = pcre2_match(code_.get(), s, n, start, PCRE2_NO_UTF_CHECK, st.md, st.ctx);
    if (rc == PCRE2_ERROR_NOMATCH) break;
    if (rc < 0) match_failed(rc);
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(st.md);
    const size_t b = ov[0], e = ov[1];
    if (b == e && e == last_match_end) {
      ++start;
      while (start < n && (subject[start] & 0xC0) == 0x80) ++start;
      continue;
    }
    on_match(b, e);
    start = e;
    last_match_end = e;
  }
}

bool Regex::matches_prefix(std::string_view subject) const {
  ThreadMatchState& st = thread_state();
  const int rc = pcre2_match(code_.get(), reinterpret_cast<PCRE2_SPTR>(subject.data()),
                             subject.size(), 0, PCRE2_NO_UTF_CHECK | PCRE2_ANCHORED, st.md, st.ctx);
  if (rc == PCRE2_ERROR_NOMATCH) return false;
  if (rc < 0) match_failed(rc);
  return true;
}

}  // namespace radix::tokenizer_detail
