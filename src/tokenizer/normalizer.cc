#include "tokenizer/normalizer.h"

#include <utf8proc.h>

#include <cstdlib>
#include <cstring>
#include <memory>

#include "tokenizer/utf8.h"

namespace radix::tokenizer_detail {
namespace {

utf8proc_option_t options_for(Normalizer::Form f) {
  const int base = UTF8PROC_STABLE;
  switch (f) {
    case Normalizer::Form::kNFC:
      return static_cast<utf8proc_option_t>(base | UTF8PROC_COMPOSE);
    case Normalizer::Form::kNFD:
      return static_cast<utf8proc_option_t>(base | UTF8PROC_DECOMPOSE);
    case Normalizer::Form::kNFKC:
      return static_cast<utf8proc_option_t>(base | UTF8PROC_COMPOSE | UTF8PROC_COMPAT);
    case Normalizer::Form::kNFKD:
      return static_cast<utf8proc_option_t>(base | UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT);
  }
  return static_cast<utf8proc_option_t>(base);
}

std::string utf8proc_apply(std::string_view s, Normalizer::Form f) {
  if (s.empty()) return {};
  utf8proc_uint8_t* out = nullptr;
  const utf8proc_ssize_t n =
      utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(s.data()),
                   static_cast<utf8proc_ssize_t>(s.size()), &out, options_for(f));
  std::unique_ptr<utf8proc_uint8_t, decltype(&std::free)> owned(out, &std::free);
  if (n < 0) {
    // Input was validated as UTF-8 before it got here, so this is a bug, not bad input.
    throw TokenizerError(std::string("normalizer: utf8proc failed: ") + utf8proc_errmsg(n));
  }
  return std::string(reinterpret_cast<const char*>(out), static_cast<size_t>(n));
}

// A Unicode form with the alignment: cut the input before every starter (combining class 0),
// normalise each segment alone and map its output bytes to the whole segment. When segment-wise
// normalisation does not reproduce the whole (compositions across starters, e.g. Hangul jamo),
// every output byte maps to the whole piece: the text is always exact, only offsets get coarser.
bool apply_form(Normalizer::Form form, const Piece& in, NormalizedText& out) {
  // ASCII is invariant under every Unicode normalisation form.
  if (is_ascii(in.text)) return false;
  std::string whole = utf8proc_apply(in.text, form);
  if (whole == in.text) return false;
  out.text.clear();
  out.align.clear();
  const std::string_view s = in.text;
  size_t seg_begin = 0;
  auto flush = [&](size_t seg_end) {
    if (seg_end == seg_begin) return;
    const std::string norm = utf8proc_apply(s.substr(seg_begin, seg_end - seg_begin), form);
    const Span range = in.input_range(seg_begin, seg_end);
    out.text += norm;
    out.align.insert(out.align.end(), norm.size(), range);
    seg_begin = seg_end;
  };
  for (size_t i = 0; i < s.size();) {
    char32_t cp;
    const size_t len = utf8_decode(s, i, cp);
    const bool starter =
        cp < 0x80 || utf8proc_get_property(static_cast<utf8proc_int32_t>(cp))->combining_class == 0;
    if (i > 0 && starter) flush(i);
    i += len;
  }
  flush(s.size());
  if (out.text != whole) {
    out.text = std::move(whole);
    out.align.assign(out.text.size(), in.input_range(0, s.size()));
  }
  return true;
}

// Replace, aligned as the reference aligns it: the replacement takes the input range of the last
// byte of the match (of the byte before an empty match; an empty match at the start takes the
// empty range there).
bool apply_replace(const Pattern& pattern, const std::string& content, const Piece& in,
                   NormalizedText& out) {
  bool any = false;
  size_t prev = 0;
  pattern.find_all(in.text, [&](size_t b, size_t e) {
    if (!any) {
      out.text.clear();
      out.align.clear();
      any = true;
    }
    append_aligned(in, prev, b, out);
    Span a;
    if (e > 0) {
      a = byte_alignment(in, e - 1);
    } else {
      const size_t start = in.align ? (in.text.empty() ? 0 : in.align[0].first) : in.base;
      a = {start, start};
    }
    out.text += content;
    out.align.insert(out.align.end(), content.size(), a);
    prev = e;
  });
  if (!any) return false;
  append_aligned(in, prev, in.text.size(), out);
  return true;
}

// Prepend: the prefix takes the range of the first character; empty text stays empty.
bool apply_prepend(const std::string& prefix, const Piece& in, NormalizedText& out) {
  if (in.text.empty() || prefix.empty()) return false;
  out.text.assign(prefix);
  out.align.assign(prefix.size(), byte_alignment(in, 0));
  append_aligned(in, 0, in.text.size(), out);
  return true;
}

}  // namespace

Span byte_alignment(const Piece& p, size_t i) {
  if (p.align) return p.align[i];
  size_t b = i;
  while (b > 0 && (static_cast<unsigned char>(p.text[b]) & 0xC0) == 0x80) --b;
  return {p.base + b, p.base + b + utf8_length(static_cast<unsigned char>(p.text[b]))};
}

void append_aligned(const Piece& p, size_t begin, size_t end, NormalizedText& out) {
  if (begin >= end) return;
  out.text.append(p.text.substr(begin, end - begin));
  if (p.align) {
    out.align.insert(out.align.end(), p.align + begin, p.align + end);
    return;
  }
  for (size_t i = begin; i < end;) {
    const size_t len = utf8_length(static_cast<unsigned char>(p.text[i]));
    out.align.insert(out.align.end(), len, Span{p.base + i, p.base + i + len});
    i += len;
  }
}

Pattern Pattern::from_json(const json& j, const std::string& where) {
  Pattern p;
  if (j.is_object() && j.contains("Regex")) {
    p.regex_ =
        std::make_shared<Regex>(json_string(j["Regex"], where + ".Regex"), false, where + ".Regex");
  } else if (j.is_object() && j.contains("String")) {
    p.literal_ = json_string(j["String"], where + ".String");
    // The reference matches an empty string everywhere; PCRE2 does the same.
    if (p.literal_.empty()) p.regex_ = std::make_shared<Regex>("", true, where + ".String");
  } else {
    json_fail(where, "expected {\"Regex\": ...} or {\"String\": ...}");
  }
  return p;
}

void Pattern::find_all(std::string_view text, FunctionRef<void(size_t, size_t)> on_match) const {
  if (regex_) {
    regex_->find_all(text, on_match);
    return;
  }
  for (size_t at = text.find(literal_); at != std::string_view::npos;
       at = text.find(literal_, at + literal_.size())) {
    on_match(at, at + literal_.size());
  }
}

Normalizer Normalizer::from_json(const json& j) {
  Normalizer n;
  if (!j.is_null()) n.add_steps(j, "normalizer");
  return n;
}

Normalizer Normalizer::nfc() {
  Normalizer n;
  n.steps_.push_back(Step{Step::Kind::kUnicode, Form::kNFC, nullptr, {}});
  return n;
}

void Normalizer::add_steps(const json& j, const std::string& where) {
  const std::string type = json_string_field(j, "type", where);
  auto form = [&](Form f) { steps_.push_back(Step{Step::Kind::kUnicode, f, nullptr, {}}); };
  if (type == "NFC") {
    form(Form::kNFC);
  } else if (type == "NFD") {
    form(Form::kNFD);
  } else if (type == "NFKC") {
    form(Form::kNFKC);
  } else if (type == "NFKD") {
    form(Form::kNFKD);
  } else if (type == "Replace") {
    Step s;
    s.kind = Step::Kind::kReplace;
    s.pattern = std::make_shared<Pattern>(
        Pattern::from_json(json_require(j, "pattern", where), where + ".pattern"));
    s.content = json_string_field(j, "content", where);
    steps_.push_back(std::move(s));
  } else if (type == "Prepend") {
    Step s;
    s.kind = Step::Kind::kPrepend;
    s.content = json_string_field(j, "prepend", where);
    steps_.push_back(std::move(s));
  } else if (type == "Sequence") {
    const json& list = json_require(j, "normalizers", where);
    if (!list.is_array()) json_fail(where + ".normalizers", "expected an array");
    for (size_t i = 0; i < list.size(); ++i) {
      add_steps(list[i], where + ".normalizers[" + std::to_string(i) + "]");
    }
  } else {
    json_fail(where, "normalizer type \"" + type +
                         "\" is not supported by radix (supported: NFC, NFD, NFKC, NFKD, "
                         "Replace, Prepend, Sequence)");
  }
}

bool Normalizer::apply(const Step& s, const Piece& in, NormalizedText& out) {
  switch (s.kind) {
    case Step::Kind::kUnicode:
      return apply_form(s.form, in, out);
    case Step::Kind::kReplace:
      return apply_replace(*s.pattern, s.content, in, out);
    case Step::Kind::kPrepend:
      return apply_prepend(s.content, in, out);
  }
  return false;
}

bool Normalizer::normalize(const Piece& in, NormalizedText& out) const {
  bool changed = false;
  NormalizedText scratch;  // only allocates when a second step rewrites the text
  for (const Step& s : steps_) {
    if (!changed) {
      changed = apply(s, in, out);
    } else if (apply(s, out.piece(), scratch)) {
      std::swap(out, scratch);
    }
  }
  return changed;
}

std::string Normalizer::normalize_string(std::string_view s) const {
  NormalizedText out;
  if (!normalize(Piece{s, 0, nullptr}, out)) return std::string(s);
  return std::move(out.text);
}

}  // namespace radix::tokenizer_detail
