// One device's prefix cache: the index (prefix_cache.h), the K/V storage in backend memory (per
// layer, one row per slot: its k heads and v heads), and the batch orchestration that cuts cached
// prefixes off a batch, runs the rest with the cached keys, stores the new ones and answers exact
// repeats from the result cache. docs/prefix_cache.md.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <vector>

#include "backend/backend.h"
#include "cache/prefix_cache.h"
#include "core/fold_plan.h"
#include "core/ragged_batch.h"
#include "model/prefix_hook.h"

namespace radix::cache {

// Shorter hits are not used and shorter sequences not stored: below this, the per-layer gather
// and the second key range cost about as much as recomputing the tokens (docs/prefix_cache.md).
inline constexpr int32_t kDefaultMinPrefixTokens = 16;

// A batch reads the cache only when its hits skip at least this fraction of the rows it would
// compute without the cache (its unique trie nodes); below, it runs as a plain batch
// (docs/prefix_cache.md "When a batch uses the cache").
inline constexpr double kDefaultMinHitFraction = 1.0 / 32;
// A batch of at most this many sequences stores them whole; a larger one stores only the rows its
// sequences share (docs/prefix_cache.md "When a batch uses the cache").
inline constexpr int32_t kDefaultStoreWholeMaxSequences = 4;
// How many row keys the "seen once" filter remembers (docs/prefix_cache.md "When a batch uses the
// cache"): buckets of kSeenKeyWays keys, a new key displacing its bucket's oldest. A batch records
// up to its token budget of keys at once, so the table is large and set-associative enough that
// one long prompt's keys do not displace each other (8 MiB, allocated on first use).
inline constexpr int32_t kSeenKeySlots = 1 << 20;
inline constexpr int32_t kSeenKeyWays = 4;

struct DevicePrefixCacheOptions {
  int64_t budget_bytes = 0;
  int32_t min_prefix_tokens = kDefaultMinPrefixTokens;
  double min_hit_fraction = kDefaultMinHitFraction;
  int32_t store_whole_max_sequences = kDefaultStoreWholeMaxSequences;
  // A batch of more sequences than that stores a row they share only when an earlier batch shared
  // it too: a reranker's query, shared by its documents within one request and rarely sent again,
  // is then not stored on sight. false: store it on the first sighting.
  bool shared_rows_seen_twice = true;
  bool results = true;  // keep each sequence's output at its last node (the result cache)
};

// A consistent copy of the cache's numbers, for metrics (any thread).
struct PrefixCacheSnapshot {
  int64_t budget_bytes = 0;
  int64_t bytes = 0;
  int64_t nodes = 0;
  int64_t results = 0;
  int64_t evicted_nodes = 0;
  int64_t sequences = 0;
  int64_t lookup_tokens = 0;
  int64_t hit_tokens = 0;
  int64_t result_hits = 0;
  int64_t prefix_hits = 0;
};

// Counters since creation (the index's own stats hold nodes, bytes and evictions).
struct PrefixCacheCounters {
  int64_t sequences = 0;      // sequences looked up
  int64_t lookup_tokens = 0;  // their tokens
  int64_t hit_tokens = 0;     // tokens not computed: cached prefixes and result hits
  int64_t result_hits = 0;    // sequences answered from the result cache
  int64_t prefix_hits = 0;    // sequences that reused a cached prefix
};

class DevicePrefixCache {
 public:
  // The model's shape: its layers and K/V width; storage is allocated in `backend`'s activation
  // dtype, budget_bytes / node bytes rows. Throws BackendError when the backend lacks the ops.
  DevicePrefixCache(Backend& backend, int32_t num_layers, int32_t num_kv_heads, int32_t head_dim,
                    DevicePrefixCacheOptions options);

  // Runs the batch's uncached rows: `forward` gets the batch of what is left of each sequence
  // (positions unchanged), its fold plan and the hook, and returns one output per sequence of
  // that batch. Returns one output per sequence of `batch`. `fold`: threshold >= 1 folds, 0 runs
  // the identity layout (attention mode off); pad_to_multiple as given. `whole`: the batch's own
  // plan (the one the forward would run without the cache), reused when nothing is cut off; the
  // hook is null when the batch neither reads nor stores anything. One batch at a time, from the
  // owner's thread (the hook's device buffers are reused by the next batch).
  using Forward = std::function<std::vector<std::vector<float>>(const RaggedBatch&, const FoldPlan&,
                                                                PrefixHook*)>;
  std::vector<std::vector<float>> run(const RaggedBatch& batch, const FoldOptions& fold,
                                      const Forward& forward, const FoldPlan* whole = nullptr);

  // Thread-safe (routing asks from the engine's threads while the owner runs a batch: the index
  // is locked only while a batch is prepared and finished, never during its forward).
  int32_t cached_prefix_length(std::span<const int32_t> ids,
                               std::span<const int32_t> positions) const;
  PrefixCacheSnapshot snapshot() const;
  // The owner's thread only (tests).
  const PrefixCache& index() const { return index_; }
  const PrefixCacheCounters& counters() const { return counters_; }
  const DevicePrefixCacheOptions& options() const { return options_; }
  int64_t node_bytes() const { return node_bytes_; }

 private:
  // Whether `key` was recorded by an earlier call; records it when not.
  bool seen_before(uint64_t key);

  Backend& be_;
  int32_t layers_;
  int64_t kv_cols_;  // 2 * kv heads * head dim
  int64_t node_bytes_;
  DevicePrefixCacheOptions options_;
  PrefixCache index_;
  Buffer storage_;  // [layers * capacity, kv_cols]: layer l's rows are [l * capacity, +capacity)
  Buffer prefix_kv_;
  // The hook's index arrays (prefix slots, ends, positions, row and token anchors, write slots),
  // reused from batch to batch like prefix_kv_ (run() is the owner's thread only).
  std::array<Buffer, 6> index_buffers_;
  // Keys of shared rows seen once and not stored (shared_rows_seen_twice): kSeenKeySlots / ways
  // buckets picked by the key's low bits, each newest first.
  std::vector<uint64_t> seen_keys_;
  PrefixCacheCounters counters_;
  mutable std::mutex mu_;  // guards index_ and counters_
};

}  // namespace radix::cache
