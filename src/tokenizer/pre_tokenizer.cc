#include "tokenizer/pre_tokenizer.h"

#include <algorithm>
#include <string>
#include <vector>

#include "tokenizer/normalizer.h"
#include "tokenizer/utf8.h"

namespace radix::tokenizer_detail {
namespace {

// ByteLevel's own split (GPT-2), used when use_regex is true.
constexpr const char* kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

SplitBehavior parse_behavior(const std::string& s, const std::string& where) {
  if (s == "Isolated") return SplitBehavior::kIsolated;
  if (s == "Removed") return SplitBehavior::kRemoved;
  if (s == "MergedWithPrevious") return SplitBehavior::kMergedWithPrevious;
  if (s == "MergedWithNext") return SplitBehavior::kMergedWithNext;
  if (s == "Contiguous") return SplitBehavior::kContiguous;
  json_fail(where, "unknown split behavior \"" + s + "\"");
}

struct Cut {
  size_t begin, end;
  bool is_match;
};

}  // namespace

PrependScheme parse_prepend_scheme(const json& j, const std::string& where) {
  PrependScheme scheme = PrependScheme::kAlways;
  if (j.contains("prepend_scheme") && !j["prepend_scheme"].is_null()) {
    const std::string s = json_string(j["prepend_scheme"], where + ".prepend_scheme");
    if (s == "always") {
      scheme = PrependScheme::kAlways;
    } else if (s == "first") {
      scheme = PrependScheme::kFirst;
    } else if (s == "never") {
      scheme = PrependScheme::kNever;
    } else {
      json_fail(where + ".prepend_scheme",
                "expected \"always\", \"first\" or \"never\", got \"" + s + "\"");
    }
  }
  // Files older than prepend_scheme say add_prefix_space. As in the reference, true changes
  // nothing and false must come with prepend_scheme "never" (the default is "always").
  if (!json_bool_field(j, "add_prefix_space", true, where) && scheme != PrependScheme::kNever) {
    json_fail(where,
              "add_prefix_space: false contradicts prepend_scheme (\"always\" unless given)");
  }
  return scheme;
}

std::string parse_metaspace_replacement(const json& j, const std::string& where) {
  const std::string r = json_string_field(j, "replacement", where);
  check_utf8(r, (where + ".replacement").c_str());
  if (r.empty() || utf8_length(static_cast<unsigned char>(r[0])) != r.size()) {
    json_fail(where + ".replacement", "expected exactly one character, got \"" + r + "\"");
  }
  return r;
}

PreTokenizer PreTokenizer::from_json(const json& j) {
  PreTokenizer p;
  if (!j.is_null()) p.add_steps(j, "pre_tokenizer", true);
  return p;
}

void PreTokenizer::add_steps(const json& j, const std::string& where, bool last) {
  if (byte_level_) {
    json_fail(where,
              "a pre-tokenizer after ByteLevel is not supported by radix (ByteLevel must "
              "come last)");
  }
  const std::string type = json_string_field(j, "type", where);
  if (type == "Sequence") {
    const json& list = json_require(j, "pretokenizers", where);
    if (!list.is_array()) json_fail(where + ".pretokenizers", "expected an array");
    for (size_t i = 0; i < list.size(); ++i) {
      add_steps(list[i], where + ".pretokenizers[" + std::to_string(i) + "]",
                last && i + 1 == list.size());
    }
  } else if (type == "Split") {
    const json& pattern = json_require(j, "pattern", where);
    Step s;
    s.kind = Step::Kind::kSplit;
    if (pattern.is_object() && pattern.contains("Regex")) {
      s.regex = std::make_shared<Regex>(json_string(pattern["Regex"], where + ".pattern.Regex"),
                                        false, where + ".pattern.Regex");
    } else if (pattern.is_object() && pattern.contains("String")) {
      s.regex = std::make_shared<Regex>(json_string(pattern["String"], where + ".pattern.String"),
                                        true, where + ".pattern.String");
    } else {
      json_fail(where + ".pattern", "expected {\"Regex\": ...} or {\"String\": ...}");
    }
    s.behavior = parse_behavior(json_string_field(j, "behavior", where), where + ".behavior");
    s.invert = json_bool_field(j, "invert", false, where);
    steps_.push_back(std::move(s));
  } else if (type == "ByteLevel") {
    if (!last) {
      json_fail(where,
                "a pre-tokenizer after ByteLevel is not supported by radix (ByteLevel "
                "must come last)");
    }
    if (json_bool_field(j, "add_prefix_space", true, where)) {
      Step s;
      s.kind = Step::Kind::kByteLevelPrefix;
      steps_.push_back(std::move(s));
    }
    if (json_bool_field(j, "use_regex", true, where)) {
      Step s;
      s.kind = Step::Kind::kSplit;
      s.regex = std::make_shared<Regex>(kGpt2Pattern, false, where + " (GPT-2 pattern)");
      steps_.push_back(std::move(s));
    }
    byte_level_ = true;
  } else if (type == "Metaspace") {
    Step s;
    s.kind = Step::Kind::kMetaspace;
    s.replacement = parse_metaspace_replacement(j, where);
    s.prepend = parse_prepend_scheme(j, where);
    s.split = json_bool_field(j, "split", true, where);
    steps_.push_back(std::move(s));
  } else {
    json_fail(where, "pre-tokenizer type \"" + type +
                         "\" is not supported by radix (supported: Split, ByteLevel, Metaspace, "
                         "Sequence)");
  }
}

void PreTokenizer::split(const Piece& piece, FunctionRef<void(const Piece&)> on_word) const {
  if (piece.text.empty()) return;
  run(0, piece, on_word);
}

void PreTokenizer::run(size_t step, const Piece& piece,
                       FunctionRef<void(const Piece&)> on_word) const {
  if (step == steps_.size()) {
    on_word(piece);
    return;
  }
  const Step& s = steps_[step];
  if (s.kind == Step::Kind::kSplit) {
    run_split(s, step, piece, on_word);
    return;
  }
  if (s.kind == Step::Kind::kMetaspace) {
    run_metaspace(s, step, piece, on_word);
    return;
  }
  // ByteLevel's prefix space: the new space maps to the input range of the first character.
  if (piece.text.front() == ' ') {
    run(step + 1, piece, on_word);
    return;
  }
  std::string text;
  text.reserve(piece.text.size() + 1);
  text.push_back(' ');
  text.append(piece.text);
  std::vector<Span> align(text.size());
  const size_t first_len = utf8_length(static_cast<unsigned char>(piece.text.front()));
  align[0] = piece.input_range(0, first_len);
  for (size_t i = 0; i < piece.text.size(); ++i) align[i + 1] = piece.input_range(i, i + 1);
  run(step + 1, Piece{text, 0, align.data()}, on_word);
}

void PreTokenizer::run_split(const Step& s, size_t step, const Piece& piece,
                             FunctionRef<void(const Piece&)> on_word) const {
  auto emit = [&](size_t b, size_t e) {
    if (b < e) run(step + 1, piece.sub(b, e), on_word);
  };
  const std::string_view text = piece.text;
  if (s.behavior == SplitBehavior::kIsolated) {
    // Isolated keeps every gap and every match as a word, with or without invert: no need to
    // build the cut list.
    size_t prev = 0;
    s.regex->find_all(text, [&](size_t b, size_t e) {
      emit(prev, b);
      emit(b, e);
      prev = e;
    });
    emit(prev, text.size());
    return;
  }

  // The general case mirrors the reference: cut the text into alternating gaps and matches,
  // then merge according to the behaviour.
  std::vector<Cut> cuts;
  size_t prev = 0;
  s.regex->find_all(text, [&](size_t b, size_t e) {
    if (prev != b) cuts.push_back({prev, b, false});
    cuts.push_back({b, e, true});
    prev = e;
  });
  if (prev != text.size()) cuts.push_back({prev, text.size(), false});
  if (s.invert) {
    for (Cut& c : cuts) c.is_match = !c.is_match;
  }

  std::vector<Cut> words;  // is_match here means "drop"
  switch (s.behavior) {
    case SplitBehavior::kIsolated:
      break;
    case SplitBehavior::kRemoved:
      words = cuts;
      break;
    case SplitBehavior::kContiguous: {
      bool previous_match = false;
      for (const Cut& c : cuts) {
        if (c.is_match == previous_match && !words.empty()) {
          words.back().end = c.end;
        } else {
          words.push_back({c.begin, c.end, false});
        }
        previous_match = c.is_match;
      }
      break;
    }
    case SplitBehavior::kMergedWithPrevious: {
      bool previous_match = false;
      for (const Cut& c : cuts) {
        if (c.is_match && !previous_match && !words.empty()) {
          words.back().end = c.end;
        } else {
          words.push_back({c.begin, c.end, false});
        }
        previous_match = c.is_match;
      }
      break;
    }
    case SplitBehavior::kMergedWithNext: {
      bool previous_match = false;
      for (auto it = cuts.rbegin(); it != cuts.rend(); ++it) {
        if (it->is_match && !previous_match && !words.empty()) {
          words.back().begin = it->begin;
        } else {
          words.push_back({it->begin, it->end, false});
        }
        previous_match = it->is_match;
      }
      std::reverse(words.begin(), words.end());
      break;
    }
  }
  for (const Cut& w : words) {
    if (!w.is_match) emit(w.begin, w.end);
  }
}

void PreTokenizer::run_metaspace(const Step& s, size_t step, const Piece& piece,
                                 FunctionRef<void(const Piece&)> on_word) const {
  // Spaces become the replacement (taking the space's range), then the replacement goes in front
  // (taking the first character's range) unless the piece starts with one; with "first", only
  // the piece that starts the input gets it, as the reference decides by the piece's offset.
  const std::string_view text = piece.text;
  const std::string& rep = s.replacement;
  const size_t input_start = piece.align ? piece.align[0].first : piece.base;
  const bool has_space = text.find(' ') != std::string_view::npos;
  const bool starts_replaced = text.front() == ' ' || text.substr(0, rep.size()) == rep;
  const bool prepend =
      !starts_replaced && (s.prepend == PrependScheme::kAlways ||
                           (s.prepend == PrependScheme::kFirst && input_start == 0));
  NormalizedText rewritten;
  Piece p = piece;
  if (has_space || prepend) {
    if (prepend) {
      rewritten.text = rep;
      rewritten.align.assign(rep.size(), byte_alignment(piece, 0));
    }
    size_t prev = 0;
    for (size_t at = text.find(' '); at != std::string_view::npos; at = text.find(' ', at + 1)) {
      append_aligned(piece, prev, at, rewritten);
      rewritten.text += rep;
      rewritten.align.insert(rewritten.align.end(), rep.size(), byte_alignment(piece, at));
      prev = at + 1;
    }
    append_aligned(piece, prev, text.size(), rewritten);
    p = rewritten.piece();
  }
  if (!s.split) {
    run(step + 1, p, on_word);
    return;
  }
  // Split before every replacement: it starts the next word (MergedWithNext).
  size_t begin = 0;
  for (size_t at = p.text.find(rep, 1); at != std::string_view::npos;
       at = p.text.find(rep, at + rep.size())) {
    run(step + 1, p.sub(begin, at), on_word);
    begin = at;
  }
  run(step + 1, p.sub(begin, p.text.size()), on_word);
}

}  // namespace radix::tokenizer_detail
