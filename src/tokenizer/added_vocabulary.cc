#include "tokenizer/added_vocabulary.h"

#include <algorithm>
#include <memory>

#include "tokenizer/regex.h"
#include "tokenizer/utf8.h"

namespace radix::tokenizer_detail {
namespace {

// The character classes the reference uses around added tokens (Unicode \w and \s), taken from
// PCRE2's Unicode properties rather than tables of our own.
const Regex& word_char() {
  static const Regex re(R"([\p{Alphabetic}\p{M}\p{Nd}\p{Pc}\p{Join_Control}])", false,
                        "word character class");
  return re;
}
const Regex& space_char() {
  static const Regex re(R"(\p{White_Space})", false, "white space class");
  return re;
}

size_t last_char_start(std::string_view s) {
  size_t i = s.size() - 1;
  while (i > 0 && (static_cast<unsigned char>(s[i]) & 0xC0) == 0x80) --i;
  return i;
}

bool ends_with_word(std::string_view s) {
  return !s.empty() && word_char().matches_prefix(s.substr(last_char_start(s)));
}

bool starts_with_word(std::string_view s) { return !s.empty() && word_char().matches_prefix(s); }

// Start of the run of white space that ends `s`.
size_t trailing_space_start(std::string_view s) {
  size_t end = s.size();
  while (end > 0) {
    const size_t c = last_char_start(s.substr(0, end));
    if (!space_char().matches_prefix(s.substr(c, end - c))) break;
    end = c;
  }
  return end;
}

// Length of the run of white space that starts `s`.
size_t leading_space_length(std::string_view s) {
  size_t i = 0;
  while (i < s.size() && space_char().matches_prefix(s.substr(i))) {
    i += utf8_length(static_cast<unsigned char>(s[i]));
  }
  return i;
}

}  // namespace

void AddedVocabulary::Trie::add(std::string_view content, int32_t token) {
  if (nodes.empty()) nodes.emplace_back();
  int32_t cur = 0;
  for (unsigned char c : content) {
    auto& next = nodes[cur].next;
    auto it = std::find_if(next.begin(), next.end(), [c](const auto& e) { return e.first == c; });
    if (it != next.end()) {
      cur = it->second;
    } else {
      const auto child = static_cast<int32_t>(nodes.size());
      nodes[cur].next.emplace_back(c, child);
      nodes.emplace_back();
      cur = child;
    }
  }
  nodes[cur].token = token;
  first_byte[static_cast<unsigned char>(content[0])] = true;
}

AddedVocabulary AddedVocabulary::from_json(const json& j, const Normalizer& normalizer,
                                           const BpeModel& model) {
  AddedVocabulary v;
  if (j.is_null()) return v;
  if (!j.is_array())
    json_fail("added_tokens", std::string("expected an array, got ") + j.type_name());
  const auto vocab_size = static_cast<int64_t>(model.vocab_size());
  int64_t max_id = -1;  // of the added tokens so far
  for (size_t i = 0; i < j.size(); ++i) {
    const std::string where = "added_tokens[" + std::to_string(i) + "]";
    const json& e = j[i];
    AddedToken t;
    json_token_id(json_require(e, "id", where), where + ".id");  // checked, then assigned below
    t.content = json_string_field(e, "content", where);
    t.special = json_bool_field(e, "special", false, where);
    t.lstrip = json_bool_field(e, "lstrip", false, where);
    t.rstrip = json_bool_field(e, "rstrip", false, where);
    t.single_word = json_bool_field(e, "single_word", false, where);
    t.normalized = json_bool_field(e, "normalized", !t.special, where);
    check_utf8(t.content, where.c_str());
    if (t.content.empty()) continue;  // the reference ignores empty tokens too
    // Ids as the reference assigns them when it loads the file (the "id" field only draws a
    // warning there): the vocabulary's id for a token it holds, the earlier id for a repeated
    // content (whose options the later entry replaces), else the next id after the vocabulary
    // and the added tokens so far. Real files list exactly these ids.
    auto same = std::find_if(v.tokens_.begin(), v.tokens_.end(),
                             [&](const AddedToken& o) { return o.content == t.content; });
    if (same != v.tokens_.end()) {
      t.id = same->id;
      *same = std::move(t);
      continue;
    }
    if (auto id = model.token_to_id(t.content)) {
      t.id = *id;
    } else {
      const int64_t next = max_id >= vocab_size ? max_id + 1 : vocab_size;
      if (next > INT32_MAX) json_fail(where, "token id out of range");
      t.id = static_cast<int32_t>(next);
    }
    max_id = std::max<int64_t>(max_id, t.id);
    v.tokens_.push_back(std::move(t));
  }
  for (size_t k = 0; k < v.tokens_.size(); ++k) {
    AddedToken& t = v.tokens_[k];
    v.by_id_[t.id] = k;
    v.by_content_[t.content] = t.id;
    t.text = t.normalized ? normalizer.normalize_string(t.content) : t.content;
    if (t.normalized) {
      if (!t.text.empty()) v.normalized_.add(t.text, static_cast<int32_t>(k));
    } else {
      v.raw_.add(t.content, static_cast<int32_t>(k));
    }
  }
  return v;
}

void AddedVocabulary::split(std::string_view text, bool normalized_set,
                            FunctionRef<void(size_t, size_t, int32_t)> on_segment) const {
  const Trie& trie = normalized_set ? normalized_ : raw_;
  if (trie.nodes.empty()) {
    if (!text.empty()) on_segment(0, text.size(), -1);
    return;
  }
  const size_t n = text.size();
  size_t emitted = 0;  // end of the last segment handed out
  size_t i = 0;
  while (i < n) {
    if (!trie.first_byte[static_cast<unsigned char>(text[i])]) {
      ++i;
      continue;
    }
    // Longest token starting at i.
    int32_t cur = 0, best = -1;
    size_t best_end = 0;
    for (size_t k = i; k < n; ++k) {
      const auto& next = trie.nodes[cur].next;
      const auto c = static_cast<unsigned char>(text[k]);
      auto it = std::find_if(next.begin(), next.end(), [c](const auto& e) { return e.first == c; });
      if (it == next.end()) break;
      cur = it->second;
      if (trie.nodes[cur].token >= 0) {
        best = trie.nodes[cur].token;
        best_end = k + 1;
      }
    }
    if (best < 0) {
      ++i;
      continue;
    }
    // Matches are found without overlap first; the options below then adjust or drop them.
    const AddedToken& t = tokens_[best];
    size_t start = i, stop = best_end;
    i = best_end;
    if (t.single_word) {
      const bool start_space = start == 0 || !ends_with_word(text.substr(0, start));
      const bool stop_space = stop == n || !starts_with_word(text.substr(stop));
      if (!start_space || !stop_space) continue;
    }
    if (t.lstrip) start = std::max(trailing_space_start(text.substr(0, start)), emitted);
    if (t.rstrip) stop += leading_space_length(text.substr(stop));
    if (emitted < start) on_segment(emitted, start, -1);
    on_segment(start, stop, t.id);
    emitted = stop;
  }
  if (emitted < n) on_segment(emitted, n, -1);
}

}  // namespace radix::tokenizer_detail
