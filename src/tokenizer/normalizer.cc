#include "tokenizer/normalizer.h"

#include <utf8proc.h>

#include <cstdlib>
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

void add_forms(const json& j, const std::string& where, std::vector<Normalizer::Form>& forms) {
  const std::string type = json_string_field(j, "type", where);
  if (type == "NFC") {
    forms.push_back(Normalizer::Form::kNFC);
  } else if (type == "NFD") {
    forms.push_back(Normalizer::Form::kNFD);
  } else if (type == "NFKC") {
    forms.push_back(Normalizer::Form::kNFKC);
  } else if (type == "NFKD") {
    forms.push_back(Normalizer::Form::kNFKD);
  } else if (type == "Sequence") {
    const json& list = json_require(j, "normalizers", where);
    if (!list.is_array()) json_fail(where + ".normalizers", "expected an array");
    for (size_t i = 0; i < list.size(); ++i) {
      add_forms(list[i], where + ".normalizers[" + std::to_string(i) + "]", forms);
    }
  } else {
    json_fail(where, "normalizer type \"" + type +
                         "\" is not supported by radix (supported: NFC, NFD, NFKC, NFKD, "
                         "Sequence)");
  }
}

}  // namespace

Normalizer Normalizer::from_json(const json& j) {
  Normalizer n;
  if (!j.is_null()) add_forms(j, "normalizer", n.forms_);
  return n;
}

std::string Normalizer::apply(std::string_view s) const {
  std::string cur(s);
  for (Form f : forms_) cur = utf8proc_apply(cur, f);
  return cur;
}

std::string Normalizer::normalize_string(std::string_view s) const {
  if (forms_.empty() || is_ascii(s)) return std::string(s);
  return apply(s);
}

bool Normalizer::normalize(const Piece& in, NormalizedText& out) const {
  // ASCII is invariant under every Unicode normalisation form.
  if (forms_.empty() || is_ascii(in.text)) return false;
  std::string whole = apply(in.text);
  if (whole == in.text) return false;

  // Alignment: cut the input before every starter (combining class 0), normalise each segment
  // alone and map its output bytes to the whole segment. When segment-wise normalisation does
  // not reproduce the whole (compositions across starters, e.g. Hangul jamo), every output byte
  // maps to the whole piece: the text is always exact, only offsets get coarser.
  out.text.clear();
  out.align.clear();
  const std::string_view s = in.text;
  size_t seg_begin = 0;
  auto flush = [&](size_t seg_end) {
    if (seg_end == seg_begin) return;
    const std::string norm = apply(s.substr(seg_begin, seg_end - seg_begin));
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

}  // namespace radix::tokenizer_detail
