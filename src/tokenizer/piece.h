// A piece of text moving through the pipeline, with the way back to offsets in the input text.
#pragma once

#include <cstddef>
#include <string_view>
#include <type_traits>
#include <utility>

namespace radix::tokenizer_detail {

using Span = std::pair<size_t, size_t>;

// `text` is either a slice of the input (align == nullptr: byte i came from input byte base + i)
// or text the pipeline rewrote (normalised, prefixed with a space), where align[i] is the input
// range byte i came from.
struct Piece {
  std::string_view text;
  size_t base = 0;
  const Span* align = nullptr;

  Piece sub(size_t begin, size_t end) const {
    return Piece{text.substr(begin, end - begin), base + (align ? 0 : begin),
                 align ? align + begin : nullptr};
  }
  // Input range of the bytes [begin, end) of this piece; begin < end.
  Span input_range(size_t begin, size_t end) const {
    if (!align) return {base + begin, base + end};
    return {align[begin].first, align[end - 1].second};
  }
};

// A non-owning reference to a callable, so the pipeline's stages can hand pieces down without a
// heap allocation per call.
template <typename Sig>
class FunctionRef;

template <typename R, typename... Args>
class FunctionRef<R(Args...)> {
 public:
  template <typename F,
            typename = std::enable_if_t<!std::is_same_v<std::remove_cvref_t<F>, FunctionRef>>>
  FunctionRef(F&& f)  // NOLINT(google-explicit-constructor)
      : obj_(const_cast<void*>(static_cast<const void*>(&f))),
        call_([](void* obj, Args... args) -> R {
          return (*static_cast<std::remove_reference_t<F>*>(obj))(std::forward<Args>(args)...);
        }) {}
  R operator()(Args... args) const { return call_(obj_, std::forward<Args>(args)...); }

 private:
  void* obj_;
  R (*call_)(void*, Args...);
};

}  // namespace radix::tokenizer_detail
