#include "tokenizer/bpe_model.h"

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <memory>

#include "tokenizer/byte_level.h"
#include "tokenizer/utf8.h"
#include "tokenizer/word_cache.h"

namespace radix::tokenizer_detail {
namespace {

std::atomic<uint64_t> next_cache_owner{1};

// The calling thread's cache for the model `owner`. A thread keeps caches for the few models it
// used last; owners are never reused, so a cache can never serve a different vocabulary.
WordCache& thread_cache(uint64_t owner) {
  thread_local std::vector<std::unique_ptr<WordCache>> caches;
  for (size_t i = 0; i < caches.size(); ++i) {
    if (caches[i]->owner() == owner) {
      if (i != 0) std::swap(caches[i], caches[0]);
      return *caches[0];
    }
  }
  constexpr size_t kMaxModelsPerThread = 4;
  if (caches.size() == kMaxModelsPerThread) caches.pop_back();
  caches.insert(caches.begin(), std::make_unique<WordCache>(owner));
  return *caches[0];
}

struct Symbol {
  int32_t id;
  int32_t prev;
  int32_t next;
  uint32_t len;
};

struct Merge {
  int32_t rank;
  int32_t pos;
  int32_t id;
};

// std heap functions keep the "largest" on top; the largest here is the lowest rank, then the
// leftmost position.
struct MergeOrder {
  bool operator()(const Merge& a, const Merge& b) const {
    return a.rank != b.rank ? a.rank > b.rank : a.pos > b.pos;
  }
};

}  // namespace

void MergeMap::reserve(size_t n) {
  size_t cap = 16;
  while (cap < n * 2) cap <<= 1;
  slots_.assign(cap, Slot{});
  mask_ = cap - 1;
  size_ = 0;
}

void MergeMap::insert_or_assign(int32_t a, int32_t b, Value v) {
  const uint64_t key = make_key(a, b);
  for (size_t i = mix(key) & mask_;; i = (i + 1) & mask_) {
    Slot& s = slots_[i];
    if (s.key == key) {
      s.value = v;  // a repeated pair takes its last rank, as the reference's map does
      return;
    }
    if (s.key == kEmpty) {
      s.key = key;
      s.value = v;
      ++size_;
      return;
    }
  }
}

BpeModel BpeModel::from_json(const json& j, bool byte_level_input) {
  const std::string where = "model";
  if (j.is_null()) json_fail(where, "missing (a tokenizer.json needs a model)");
  const std::string type =
      j.contains("type") ? json_string(j["type"], where + ".type") : std::string("BPE");
  if (type != "BPE") {
    json_fail(where, "model type \"" + type + "\" is not supported by radix (supported: BPE)");
  }
  BpeModel m;
  m.byte_level_input_ = byte_level_input;

  if (j.contains("dropout") && !j["dropout"].is_null()) {
    if (!j["dropout"].is_number()) json_fail(where + ".dropout", "expected a number or null");
    if (j["dropout"].get<double>() != 0.0) {
      json_fail(where + ".dropout",
                "BPE dropout is random; radix tokenizes deterministically (set it to null)");
    }
  }
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    if (j.contains(key) && !j[key].is_null() && json_string(j[key], where + "." + key) != "") {
      json_fail(where + "." + key, "is not supported by radix (byte-level BPE does not use it)");
    }
  }
  m.fuse_unk_ = json_bool_field(j, "fuse_unk", false, where);
  m.byte_fallback_ = json_bool_field(j, "byte_fallback", false, where);
  m.ignore_merges_ = json_bool_field(j, "ignore_merges", false, where);

  const json& vocab = json_require(j, "vocab", where);
  if (!vocab.is_object()) {
    json_fail(where + ".vocab", std::string("expected an object, got ") + vocab.type_name());
  }
  m.vocab_.reserve(vocab.size());
  int32_t max_id = -1;
  for (auto it = vocab.begin(); it != vocab.end(); ++it) {
    const int32_t id = json_token_id(it.value(), where + ".vocab[\"" + it.key() + "\"]");
    m.vocab_[it.key()] = id;
    max_id = std::max(max_id, id);
  }
  // The id -> token table is dense; real vocabularies are too. A stray huge id would make it
  // enormous, so it is an error rather than an allocation of gigabytes.
  if (max_id >= 0 && static_cast<size_t>(max_id) > 4 * m.vocab_.size() + 1024) {
    json_fail(where + ".vocab", "token id " + std::to_string(max_id) + " is far beyond the " +
                                    std::to_string(m.vocab_.size()) + " tokens of the vocabulary");
  }
  const size_t table_size = max_id < 0 ? 0 : static_cast<size_t>(max_id) + 1;
  m.id_to_token_.resize(table_size);
  m.has_id_.assign(table_size, false);
  for (const auto& [tok, id] : m.vocab_) {
    m.id_to_token_[id] = tok;
    m.has_id_[id] = true;
  }

  if (j.contains("unk_token") && !j["unk_token"].is_null()) {
    const std::string unk = json_string(j["unk_token"], where + ".unk_token");
    auto it = m.vocab_.find(unk);
    if (it == m.vocab_.end()) {
      json_fail(where + ".unk_token", "\"" + unk + "\" is not in the vocabulary");
    }
    m.unk_id_ = it->second;
  }

  for (int b = 0; b < 256; ++b) {
    std::string s;
    utf8_append(s, byte_to_char()[b]);
    auto it = m.vocab_.find(s);
    m.byte_ids_[b] = it == m.vocab_.end() ? -1 : it->second;
    char hex[8];
    std::snprintf(hex, sizeof hex, "<0x%02X>", b);
    auto fb = m.vocab_.find(std::string_view(hex));
    m.byte_fallback_ids_[b] = fb == m.vocab_.end() ? -1 : fb->second;
  }

  const json& merges = json_require(j, "merges", where);
  if (!merges.is_array()) {
    json_fail(where + ".merges", std::string("expected an array, got ") + merges.type_name());
  }
  m.merges_.reserve(merges.size());
  std::vector<std::pair<int32_t, int32_t>> merge_pairs;
  merge_pairs.reserve(merges.size());
  std::string merged;
  for (size_t i = 0; i < merges.size(); ++i) {
    const json& e = merges[i];
    const std::string at = where + ".merges[" + std::to_string(i) + "]";
    std::string a, b;
    if (e.is_string()) {
      const std::string s = e.get<std::string>();
      const size_t sp = s.find(' ');
      if (sp == std::string::npos || s.find(' ', sp + 1) != std::string::npos) {
        json_fail(at, "expected \"left right\" (two tokens and one space), got \"" + s + "\"");
      }
      a = s.substr(0, sp);
      b = s.substr(sp + 1);
    } else if (e.is_array() && e.size() == 2) {
      a = json_string(e[0], at + "[0]");
      b = json_string(e[1], at + "[1]");
    } else {
      json_fail(at, "expected \"left right\" or [left, right]");
    }
    merged = a + b;
    auto ia = m.vocab_.find(a), ib = m.vocab_.find(b), im = m.vocab_.find(merged);
    if (ia == m.vocab_.end() || ib == m.vocab_.end() || im == m.vocab_.end()) {
      const std::string& missing = ia == m.vocab_.end() ? a : ib == m.vocab_.end() ? b : merged;
      json_fail(at, "token \"" + missing + "\" is not in the vocabulary");
    }
    m.merges_.insert_or_assign(ia->second, ib->second,
                               {static_cast<int32_t>(i), static_cast<int32_t>(im->second)});
    merge_pairs.emplace_back(ia->second, ib->second);
  }
  m.find_safe_cuts(merge_pairs);
  m.cache_owner_ = next_cache_owner.fetch_add(1);
  return m;
}

void BpeModel::find_safe_cuts(const std::vector<std::pair<int32_t, int32_t>>& merge_pairs) {
  // Cutting a word before position p gives the same tokens as the whole word when no merge
  // can join the symbol ending at p with the one starting there: merges on each side then
  // never read or change the other side, whatever order the ranks interleave them in. The
  // symbol starting at p begins with "▁"; when the character before p is in the vocabulary,
  // the symbol ending at p ends with it (tokenize cuts only there: an unknown character
  // becomes byte tokens, <unk> or nothing, and then a symbol further left could meet "▁").
  // Byte-level words, ignore_merges (which looks up the whole word first) and a vocabulary
  // without "▁" keep words whole.
  static constexpr std::string_view kMeta = "\xE2\x96\x81";
  if (byte_level_input_ || ignore_merges_ || !vocab_.count(kMeta)) return;
  std::vector<char32_t> ends;
  for (const auto& [a, b] : merge_pairs) {
    const std::string& right = id_to_token_[b];
    if (right.compare(0, kMeta.size(), kMeta) != 0) continue;
    const std::string& left = id_to_token_[a];
    size_t last = left.size() - 1;
    while (last > 0 && (static_cast<unsigned char>(left[last]) & 0xC0) == 0x80) --last;
    char32_t cp;
    utf8_decode(left, last, cp);
    ends.push_back(cp);
  }
  std::sort(ends.begin(), ends.end());
  ends.erase(std::unique(ends.begin(), ends.end()), ends.end());
  cut_before_ = std::string(kMeta);
  no_cut_after_ = std::move(ends);
}

std::optional<int32_t> BpeModel::token_to_id(std::string_view token) const {
  auto it = vocab_.find(token);
  if (it == vocab_.end()) return std::nullopt;
  return it->second;
}

const std::string* BpeModel::id_to_token(int32_t id) const {
  if (id < 0 || static_cast<size_t>(id) >= has_id_.size() || !has_id_[id]) return nullptr;
  return &id_to_token_[id];
}

void BpeModel::merge_word(std::string_view word, std::vector<int32_t>& ids,
                          std::vector<uint32_t>& lens) const {
  ids.clear();
  lens.clear();
  if (ignore_merges_) {
    const std::string spelled = byte_level_input_ ? byte_level_encode(word) : std::string(word);
    if (auto it = vocab_.find(spelled); it != vocab_.end()) {
      ids.push_back(it->second);
      lens.push_back(static_cast<uint32_t>(word.size()));
      return;
    }
  }

  // Initial symbols: one per character (per byte in byte-level mode).
  std::vector<Symbol> symbols;
  symbols.reserve(word.size());
  auto add = [&](int32_t id, uint32_t len) {
    const auto pos = static_cast<int32_t>(symbols.size());
    symbols.push_back({id, pos - 1, pos + 1, len});
  };
  int32_t unk_len = 0;  // bytes of a pending unknown run (0 = none)
  std::string spelled;
  for (size_t i = 0; i < word.size();) {
    size_t len;
    int32_t id;
    if (byte_level_input_) {
      len = 1;
      id = byte_ids_[static_cast<unsigned char>(word[i])];
    } else {
      len = utf8_length(static_cast<unsigned char>(word[i]));
      auto it = vocab_.find(word.substr(i, len));
      id = it == vocab_.end() ? -1 : it->second;
    }
    if (id >= 0) {
      if (unk_len > 0) add(unk_id_, static_cast<uint32_t>(unk_len));
      unk_len = 0;
      add(id, static_cast<uint32_t>(len));
      i += len;
      continue;
    }
    // An unknown character: its bytes as <0xAB> tokens, or the unknown token, or nothing.
    if (byte_level_input_) {
      spelled.clear();
      utf8_append(spelled, byte_to_char()[static_cast<unsigned char>(word[i])]);
    } else {
      spelled.assign(word.substr(i, len));
    }
    bool handled = false;
    if (byte_fallback_) {
      handled = std::all_of(spelled.begin(), spelled.end(), [&](char c) {
        return byte_fallback_ids_[static_cast<unsigned char>(c)] >= 0;
      });
      if (handled) {
        // A pending unknown run is not flushed here: the reference adds it after these bytes.
        for (char c : spelled) add(byte_fallback_ids_[static_cast<unsigned char>(c)], 1);
      }
    }
    if (!handled && unk_id_ >= 0) {
      if (unk_len > 0 && !fuse_unk_) {
        add(unk_id_, static_cast<uint32_t>(unk_len));
        unk_len = 0;
      }
      unk_len += static_cast<int32_t>(len);
    }
    i += len;
  }
  if (unk_len > 0) add(unk_id_, static_cast<uint32_t>(unk_len));
  if (symbols.empty()) return;
  symbols.back().next = -1;

  std::vector<Merge> heap;
  heap.reserve(symbols.size());
  for (size_t i = 0; i + 1 < symbols.size(); ++i) {
    if (const MergeMap::Value* v = merges_.find(symbols[i].id, symbols[i + 1].id)) {
      heap.push_back({v->rank, static_cast<int32_t>(i), v->id});
    }
  }
  std::make_heap(heap.begin(), heap.end(), MergeOrder{});
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), MergeOrder{});
    const Merge top = heap.back();
    heap.pop_back();
    Symbol& cur = symbols[top.pos];
    if (cur.len == 0 || cur.next < 0) continue;
    const Symbol right = symbols[cur.next];
    // Skip entries made stale by earlier merges: the pair here must still merge into top.id.
    const MergeMap::Value* v = merges_.find(cur.id, right.id);
    if (!v || v->id != top.id) continue;
    symbols[cur.next].len = 0;
    cur.id = top.id;
    cur.len += right.len;
    cur.next = right.next;
    if (right.next >= 0) symbols[right.next].prev = top.pos;
    if (cur.prev >= 0) {
      if (const MergeMap::Value* pv = merges_.find(symbols[cur.prev].id, cur.id)) {
        heap.push_back({pv->rank, cur.prev, pv->id});
        std::push_heap(heap.begin(), heap.end(), MergeOrder{});
      }
    }
    if (cur.next >= 0) {
      if (const MergeMap::Value* nv = merges_.find(cur.id, symbols[cur.next].id)) {
        heap.push_back({nv->rank, top.pos, nv->id});
        std::push_heap(heap.begin(), heap.end(), MergeOrder{});
      }
    }
  }
  for (const Symbol& s : symbols) {
    if (s.len == 0) continue;
    ids.push_back(s.id);
    lens.push_back(s.len);
  }
}

void BpeModel::tokenize_cut(const Piece& word, std::vector<int32_t>& ids,
                            std::vector<Span>& offsets) const {
  const std::string_view w = word.text;
  size_t begin = 0;
  for (size_t at = w.find(cut_before_, 1); at != std::string_view::npos;
       at = w.find(cut_before_, at + cut_before_.size())) {
    size_t prev = at - 1;
    while (prev > 0 && (static_cast<unsigned char>(w[prev]) & 0xC0) == 0x80) --prev;
    char32_t cp;
    utf8_decode(w, prev, cp);
    if (std::binary_search(no_cut_after_.begin(), no_cut_after_.end(), cp)) continue;
    if (!vocab_.count(w.substr(prev, at - prev))) continue;
    tokenize_whole(word.sub(begin, at), ids, offsets);
    begin = at;
  }
  tokenize_whole(word.sub(begin, w.size()), ids, offsets);
}

void BpeModel::tokenize_whole(const Piece& word, std::vector<int32_t>& ids,
                              std::vector<Span>& offsets) const {
  const std::string_view w = word.text;
  // One byte: its byte-level token, no merge possible.
  if (byte_level_input_ && w.size() == 1 && !ignore_merges_) {
    const int32_t id = byte_ids_[static_cast<unsigned char>(w[0])];
    if (id >= 0) {
      ids.push_back(id);
      offsets.push_back(word.input_range(0, 1));
      return;
    }
  }
  // Forced inline: called from three places, GCC otherwise keeps it out of line, which costs
  // the byte-level path (Qwen3) about 2% of its instructions.
  auto emit = [&](const int32_t* tok, const uint32_t* lens, size_t n)
      __attribute__((always_inline)) {
    size_t pos = 0;
    for (size_t k = 0; k < n; ++k) {
      // Byte fallback can spell one input byte as several tokens: keep offsets inside the word.
      size_t b = std::min(pos, w.size() - 1);
      size_t e = std::max(std::min(pos + lens[k], w.size()), b + 1);
      // A token holding part of a character reports the whole character, as the reference does.
      while (b > 0 && (static_cast<unsigned char>(w[b]) & 0xC0) == 0x80) --b;
      while (e < w.size() && (static_cast<unsigned char>(w[e]) & 0xC0) == 0x80) ++e;
      ids.push_back(tok[k]);
      offsets.push_back(word.input_range(b, e));
      pos += lens[k];
    }
  };
  thread_local std::vector<int32_t> tmp_ids;
  thread_local std::vector<uint32_t> tmp_lens;
  if (w.size() > WordCache::kMaxWordBytes) {
    merge_word(w, tmp_ids, tmp_lens);
    emit(tmp_ids.data(), tmp_lens.data(), tmp_ids.size());
    return;
  }
  WordCache& cache = thread_cache(cache_owner_);
  const uint64_t h = hash_bytes(w);
  WordCache::Entry hit;
  if (cache.find(w, h, hit)) {
    emit(hit.ids, hit.lens, hit.count);
    return;
  }
  merge_word(w, tmp_ids, tmp_lens);
  cache.insert(w, h, tmp_ids.data(), tmp_lens.data(), static_cast<uint32_t>(tmp_ids.size()));
  emit(tmp_ids.data(), tmp_lens.data(), tmp_ids.size());
}

}  // namespace radix::tokenizer_detail
