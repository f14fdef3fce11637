// The BPE model: vocabulary, merge ranks, and the merge loop (lowest rank first, leftmost on
// ties, as Hugging Face `tokenizers` does it).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "tokenizer/json_access.h"
#include "tokenizer/piece.h"

namespace radix::tokenizer_detail {

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
using Vocab = std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>>;

// (left id, right id) -> (rank, merged id), open addressing.
class MergeMap {
 public:
  struct Value {
    int32_t rank;
    int32_t id;
  };
  void reserve(size_t n);
  void insert_or_assign(int32_t a, int32_t b, Value v);
  const Value* find(int32_t a, int32_t b) const {
    if (slots_.empty()) return nullptr;
    const uint64_t key = make_key(a, b);
    for (size_t i = mix(key) & mask_;; i = (i + 1) & mask_) {
      const Slot& s = slots_[i];
      if (s.key == key) return &s.value;
      if (s.key == kEmpty) return nullptr;
    }
  }
  size_t size() const { return size_; }

 private:
  static constexpr uint64_t kEmpty = ~0ull;
  struct Slot {
    uint64_t key = kEmpty;
    Value value{};
  };
  static uint64_t make_key(int32_t a, int32_t b) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
  }
  static uint64_t mix(uint64_t k) {
    k ^= k >> 31;
    k *= 0x9E3779B97F4A7C15ull;
    return k ^ (k >> 29);
  }
  std::vector<Slot> slots_;
  size_t mask_ = 0;
  size_t size_ = 0;
};

class BpeModel {
 public:
  // tokenizer.json's "model". `byte_level_input`: words arrive as raw bytes to be read in the
  // byte-level alphabet (the pre-tokenizer ends with ByteLevel).
  static BpeModel from_json(const json& model, bool byte_level_input);

  // Appends the tokens of one word (never empty) and their input byte ranges.
  void tokenize(const Piece& word, std::vector<int32_t>& ids, std::vector<Span>& offsets) const {
    if (cut_before_.empty()) {
      tokenize_whole(word, ids, offsets);
    } else {
      tokenize_cut(word, ids, offsets);
    }
  }

  std::optional<int32_t> token_to_id(std::string_view token) const;
  const std::string* id_to_token(int32_t id) const;
  size_t vocab_size() const { return vocab_.size(); }
  const Vocab& vocab() const { return vocab_; }

 private:
  // The merge loop without the cache: tokens and the bytes of the word each one covers.
  void merge_word(std::string_view word, std::vector<int32_t>& ids,
                  std::vector<uint32_t>& lens) const;
  // One word through the word cache and the merge loop.
  void tokenize_whole(const Piece& word, std::vector<int32_t>& ids,
                      std::vector<Span>& offsets) const;
  // A word cut before "▁" where that is safe, each piece through tokenize_whole.
  void tokenize_cut(const Piece& word, std::vector<int32_t>& ids, std::vector<Span>& offsets) const;
  // Decides whether words may be cut before "▁" (see tokenize); called once merges are known.
  void find_safe_cuts(const std::vector<std::pair<int32_t, int32_t>>& merge_pairs);

  Vocab vocab_;
  std::vector<std::string> id_to_token_;
  std::vector<bool> has_id_;
  MergeMap merges_;
  bool byte_level_input_ = false;
  std::array<int32_t, 256> byte_ids_{};           // byte-level character of each byte -> id
  std::array<int32_t, 256> byte_fallback_ids_{};  // "<0xAB>" -> id, or -1
  int32_t unk_id_ = -1;
  bool fuse_unk_ = false;
  bool byte_fallback_ = false;
  bool ignore_merges_ = false;
  // SentencePiece-style words (often a whole text, as Llama-2 and Gemma have no pre-tokenizer)
  // are cut before a "▁" where no merge can ever join across: cut_before_ is "▁" when that is
  // decided per cut by the character before it, and no_cut_after_ holds the characters that
  // end the left side of some merge whose right side starts with "▁" (sorted).
  std::string cut_before_;
  std::vector<char32_t> no_cut_after_;
  uint64_t cache_owner_ = 0;  // identifies this model's entries in the per-thread word caches
};

}  // namespace radix::tokenizer_detail
