// A per-thread cache from a word's bytes to its BPE tokens: most words of real text repeat, and a
// hit skips the merge loop entirely.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace radix::tokenizer_detail {

inline uint64_t hash_bytes(std::string_view s) {
  // 8 bytes at a time with a multiply-xorshift mix; good enough for short words, fast to compute.
  constexpr uint64_t kMul = 0x9E3779B97F4A7C15ull;
  uint64_t h = s.size() * kMul;
  const char* p = s.data();
  size_t n = s.size();
  while (n >= 8) {
    uint64_t w;
    std::memcpy(&w, p, 8);
    h = (h ^ w) * kMul;
    h ^= h >> 29;
    p += 8;
    n -= 8;
  }
  if (n > 0) {
    uint64_t w = 0;
    std::memcpy(&w, p, n);
    h = (h ^ w) * kMul;
    h ^= h >> 29;
  }
  h *= kMul;
  return h ^ (h >> 32);
}

class WordCache {
 public:
  struct Entry {
    const int32_t* ids;
    const uint32_t* lens;  // bytes of the word each token covers
    uint32_t count;
  };

  explicit WordCache(uint64_t owner) : owner_(owner) { clear(); }
  uint64_t owner() const { return owner_; }

  bool find(std::string_view word, uint64_t hash, Entry& out) const {
    for (size_t i = hash & mask_;; i = (i + 1) & mask_) {
      const Slot& s = slots_[i];
      if (s.hash == 0) return false;
      if (s.hash == (hash | 1) && s.key_len == word.size() &&
          std::memcmp(keys_.data() + s.key_off, word.data(), word.size()) == 0) {
        out = Entry{ids_.data() + s.val_off, lens_.data() + s.val_off, s.val_len};
        return true;
      }
    }
  }

  void insert(std::string_view word, uint64_t hash, const int32_t* ids, const uint32_t* lens,
              uint32_t count) {
    // Bounded memory: start over rather than evict one by one.
    if (size_ + 1 > kMaxEntries || keys_.size() + word.size() > kMaxKeyBytes) clear();
    size_t i = hash & mask_;
    while (slots_[i].hash != 0) i = (i + 1) & mask_;
    Slot& s = slots_[i];
    s.hash = hash | 1;
    s.key_off = static_cast<uint32_t>(keys_.size());
    s.key_len = static_cast<uint32_t>(word.size());
    s.val_off = static_cast<uint32_t>(ids_.size());
    s.val_len = count;
    keys_.append(word);
    ids_.insert(ids_.end(), ids, ids + count);
    lens_.insert(lens_.end(), lens, lens + count);
    ++size_;
  }

  static constexpr size_t kMaxWordBytes = 256;  // longer words are not cached

 private:
  // About 3 MiB per thread and model at most: room for 32k distinct words (the 4,300 dl19 passages
  // hold 23k), small enough for servers with many threads.
  static constexpr size_t kSlots = 1 << 16;
  static constexpr size_t kMaxEntries = kSlots / 2;
  static constexpr size_t kMaxKeyBytes = 1 << 20;

  struct Slot {
    uint64_t hash = 0;  // 0 = empty; stored hashes have the low bit set
    uint32_t key_off = 0, key_len = 0, val_off = 0, val_len = 0;
  };

  void clear() {
    slots_.assign(kSlots, Slot{});
    mask_ = kSlots - 1;
    keys_.clear();
    ids_.clear();
    lens_.clear();
    size_ = 0;
  }

  uint64_t owner_;
  std::vector<Slot> slots_;
  size_t mask_ = 0;
  std::string keys_;
  std::vector<int32_t> ids_;
  std::vector<uint32_t> lens_;
  size_t size_ = 0;
};

}  // namespace radix::tokenizer_detail
