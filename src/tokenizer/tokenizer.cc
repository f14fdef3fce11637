#include "tokenizer/tokenizer.h"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <exception>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>

#include "tokenizer/folder_recipe.h"
#include "tokenizer/thread_pool.h"
#include "tokenizer/tokenizer_impl.h"
#include "tokenizer/utf8.h"

namespace radix {

using tokenizer_detail::json;
using tokenizer_detail::NormalizedText;
using tokenizer_detail::Piece;
using tokenizer_detail::TokenizerImpl;

namespace tokenizer_detail {

void TokenizerImpl::encode_raw(std::string_view text, Encoding& out) const {
  check_utf8(text, "tokenizer input");
  auto on_word = [&](const Piece& w) { model.tokenize(w, out.ids, out.offsets); };
  auto on_normalized = [&](const Piece& p) {
    if (!added.has_tokens(true)) {
      pre_tokenizer.split(p, on_word);
      return;
    }
    added.split(p.text, true, [&](size_t b, size_t e, int32_t id) {
      const Piece s = p.sub(b, e);
      if (id >= 0) {
        out.ids.push_back(id);
        out.offsets.push_back(s.input_range(0, e - b));
      } else {
        pre_tokenizer.split(s, on_word);
      }
    });
  };
  added.split(text, false, [&](size_t b, size_t e, int32_t id) {
    if (id >= 0) {
      out.ids.push_back(id);
      out.offsets.emplace_back(b, e);
      return;
    }
    const Piece raw{text.substr(b, e - b), b, nullptr};
    NormalizedText normalized;
    if (normalizer.normalize(raw, normalized)) {
      on_normalized(normalized.piece());
    } else {
      on_normalized(raw);
    }
  });
}

}  // namespace tokenizer_detail

namespace {

void truncate_one(Encoding& e, size_t max_len, TruncationSide side) {
  if (e.ids.size() <= max_len) return;
  if (side == TruncationSide::kRight) {
    e.ids.resize(max_len);
    e.offsets.resize(max_len);
  } else {
    const size_t drop = e.ids.size() - max_len;
    e.ids.erase(e.ids.begin(), e.ids.begin() + static_cast<std::ptrdiff_t>(drop));
    e.offsets.erase(e.offsets.begin(), e.offsets.begin() + static_cast<std::ptrdiff_t>(drop));
  }
}

// Hugging Face's "longest first" for pairs: the shorter input keeps what it can, the longer one
// takes the rest; when both are too long each gets half.
void truncate_pair(Encoding& a, Encoding& b, size_t max_len, TruncationSide side) {
  if (a.ids.size() + b.ids.size() <= max_len) return;
  size_t n1 = a.ids.size(), n2 = b.ids.size();
  const bool swap = n1 > n2;
  if (swap) std::swap(n1, n2);
  n2 = n1 > max_len ? n1 : std::max(n1, max_len - n1);
  if (n1 + n2 > max_len) {
    n1 = max_len / 2;
    n2 = n1 + max_len % 2;
  }
  if (swap) std::swap(n1, n2);
  truncate_one(a, n1, side);
  truncate_one(b, n2, side);
}

void append(Encoding& dst, const Encoding& src) {
  dst.ids.insert(dst.ids.end(), src.ids.begin(), src.ids.end());
  dst.offsets.insert(dst.offsets.end(), src.offsets.begin(), src.offsets.end());
}

Encoding finish(const TokenizerImpl& impl, Encoding a, Encoding* b, bool add_special_tokens,
                const Truncation& requested) {
  const Truncation& t = requested.max_length > 0 ? requested : impl.default_truncation;
  const bool pair = b != nullptr;
  if (t.max_length > 0) {
    size_t budget = t.max_length;
    if (add_special_tokens) {
      const size_t added = impl.post_processor.added_count(pair);
      if (added > budget) {
        throw TokenizerError("truncation: max_length " + std::to_string(t.max_length) +
                             " is smaller than the " + std::to_string(added) +
                             " special tokens the post-processor adds");
      }
      budget -= added;
    }
    if (pair) {
      truncate_pair(a, *b, budget, t.side);
    } else {
      truncate_one(a, budget, t.side);
    }
  }
  if (!add_special_tokens || !impl.post_processor.adds_tokens()) {
    if (pair) append(a, *b);
    return a;
  }
  Encoding out;
  out.ids.reserve(a.ids.size() + (pair ? b->ids.size() : 0) +
                  impl.post_processor.added_count(pair));
  out.offsets.reserve(out.ids.capacity());
  for (const auto& item : impl.post_processor.items(pair)) {
    if (item.sequence == 0) {
      append(out, a);
    } else if (item.sequence == 1) {
      if (pair) append(out, *b);
    } else {
      for (int32_t id : item.ids) {
        out.ids.push_back(id);
        out.offsets.emplace_back(0, 0);
      }
    }
  }
  return out;
}

std::string read_file(const std::string& path) {
  // The caller puts the path in front of the message.
  std::ifstream in(path, std::ios::binary);
  if (!in) throw TokenizerError(std::string("cannot open (") + std::strerror(errno) + ")");
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) throw TokenizerError("cannot read");
  return ss.str();
}

}  // namespace

Tokenizer::Tokenizer(std::shared_ptr<const TokenizerImpl> impl) : impl_(std::move(impl)) {}

Tokenizer Tokenizer::from_json(std::string_view tokenizer_json) {
  json doc;
  try {
    doc = json::parse(tokenizer_json);
  } catch (const json::parse_error& e) {
    throw TokenizerError(std::string("tokenizer.json: not valid JSON: ") + e.what());
  }
  try {
    return Tokenizer(TokenizerImpl::from_json(doc));
  } catch (const json::exception& e) {
    throw TokenizerError(std::string("tokenizer.json: unexpected content: ") + e.what());
  }
}

Tokenizer Tokenizer::from_file(const std::string& path) {
  try {
    return from_json(read_file(path));
  } catch (const TokenizerError& e) {
    throw TokenizerError(path + ": " + e.what());
  }
}

Tokenizer Tokenizer::from_directory(const std::string& dir) {
  namespace fs = std::filesystem;
  if (!fs::is_directory(dir)) throw TokenizerError(dir + ": not a directory");
  const fs::path json_path = fs::path(dir) / "tokenizer.json";
  if (fs::exists(json_path)) return from_file(json_path.string());
  try {
    return Tokenizer(TokenizerImpl::from_json(tokenizer_detail::tokenizer_json_from_folder(dir)));
  } catch (const TokenizerError& e) {
    throw TokenizerError(dir + " (built from vocab.json + merges.txt): " + e.what());
  } catch (const json::exception& e) {
    throw TokenizerError(dir + ": unexpected content: " + e.what());
  }
}

Tokenizer Tokenizer::from_path(const std::string& path) {
  namespace fs = std::filesystem;
  if (!fs::exists(path)) throw TokenizerError(path + ": no such file or folder");
  return fs::is_directory(path) ? from_directory(path) : from_file(path);
}

Encoding Tokenizer::encode(std::string_view text, bool add_special_tokens,
                           const Truncation& t) const {
  Encoding e;
  impl_->encode_raw(text, e);
  return finish(*impl_, std::move(e), nullptr, add_special_tokens, t);
}

Encoding Tokenizer::encode_pair(std::string_view a, std::string_view b, bool add_special_tokens,
                                const Truncation& t) const {
  Encoding ea, eb;
  impl_->encode_raw(a, ea);
  impl_->encode_raw(b, eb);
  return finish(*impl_, std::move(ea), &eb, add_special_tokens, t);
}

std::vector<Encoding> Tokenizer::encode_batch(const std::vector<std::string>& texts,
                                              bool add_special_tokens, const Truncation& t,
                                              int num_threads) const {
  std::vector<Encoding> out(texts.size());
  size_t threads = num_threads > 0 ? static_cast<size_t>(num_threads)
                                   : std::max(1u, std::thread::hardware_concurrency());
  threads = std::min(threads, texts.size());
  if (threads <= 1) {
    for (size_t i = 0; i < texts.size(); ++i) out[i] = encode(texts[i], add_special_tokens, t);
    return out;
  }
  // Texts are handed out one at a time so long and short ones balance across threads.
  std::atomic<size_t> next{0};
  std::exception_ptr error;
  std::mutex error_mu;
  ThreadPool::shared().run(threads, [&] {
    for (size_t i; (i = next.fetch_add(1)) < texts.size();) {
      try {
        out[i] = encode(texts[i], add_special_tokens, t);
      } catch (...) {
        std::lock_guard<std::mutex> lock(error_mu);
        if (!error) error = std::current_exception();
        next = texts.size();
      }
    }
  });
  if (error) std::rethrow_exception(error);
  return out;
}

std::string Tokenizer::decode(std::span<const int32_t> ids, bool skip_special_tokens) const {
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  for (int32_t id : ids) {
    const std::string* token = nullptr;
    if (const auto* added = impl_->added.by_id(id)) {
      token = &added->text;
    } else {
      token = impl_->model.id_to_token(id);
    }
    if (!token)
      throw TokenizerError("decode: id " + std::to_string(id) + " is not in the vocabulary");
    if (skip_special_tokens) {
      const auto added_id = impl_->added.token_to_id(*token);
      if (added_id) {
        const auto* added = impl_->added.by_id(*added_id);
        if (added && added->special) continue;
      }
    }
    tokens.push_back(*token);
  }
  // Added tokens go through the decoder like any other token, as in the reference.
  return impl_->decoder.decode(std::move(tokens));
}

std::optional<int32_t> Tokenizer::token_to_id(std::string_view token) const {
  if (auto id = impl_->added.token_to_id(token)) return id;
  return impl_->model.token_to_id(token);
}

std::optional<std::string> Tokenizer::id_to_token(int32_t id) const {
  if (const auto* added = impl_->added.by_id(id)) return added->text;
  if (const std::string* t = impl_->model.id_to_token(id)) return *t;
  return std::nullopt;
}

int32_t Tokenizer::vocab_size() const {
  // Like the reference: distinct tokens of the vocabulary and the added tokens together.
  size_t n = impl_->model.vocab_size();
  for (const auto& t : impl_->added.tokens()) {
    if (!impl_->model.token_to_id(t.content)) ++n;
  }
  return static_cast<int32_t>(n);
}

size_t Tokenizer::num_special_tokens_to_add(bool is_pair) const {
  return impl_->post_processor.added_count(is_pair);
}

}  // namespace radix
