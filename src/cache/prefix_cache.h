// The prefix cache's index: a trie of (token, position) paths computed by earlier batches, each
// node owning one storage slot (its K and V in every layer, held by the caller, see
// prefix_kv_store.h) and, at a sequence's end, optionally the sequence's pooled output (the
// result cache). Design and policy: docs/prefix_cache.md.
//
// Keys: a node's key is a hash chain, hash(parent's key, token, position), so a path's key can be
// computed without the trie (routing asks "do you hold this prefix?"). Lookups verify the parent,
// token and position of every node they step through, never the hash alone, so a collision costs
// a miss, never a wrong hit.
//
// Eviction: least recently used leaves first (ties: the deepest first), one node at a time, so
// the cache stays closed under ancestors (a node is never evicted before its descendants: a whole
// subtree goes, leaves up). Pinned nodes (a running batch's anchors and new rows) are never
// evicted. Budget: nodes * node_bytes + result bytes <= budget_bytes.
//
// Cost: every operation is O(1) amortised per node it visits, with no allocation per node (a
// batch stores thousands of nodes, docs/prefix_cache.md "Bookkeeping cost"). "Used" is a clock
// that each match() advances; insert() stamps its node with the current clock and stops marking
// ancestors at the first one already stamped, so storing a path costs O(its length), not
// O(length^2). Nodes stored since the last match() are equally recent (ties: deepest first).
//
// Not thread-safe: one owner (a device's worker) at a time.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace radix::cache {

using HashFn = uint64_t (*)(uint64_t parent_key, int32_t token, int32_t position);
// The default key hash (a 64-bit mix of the three values).
uint64_t path_hash(uint64_t parent_key, int32_t token, int32_t position);

struct PrefixCacheOptions {
  int64_t budget_bytes = 0;  // 0: the cache holds nothing
  int64_t node_bytes = 1;    // storage of one node (its K and V over all layers), > 0
  HashFn hash = path_hash;   // tests swap in a colliding one
};

struct PrefixCacheStats {
  int64_t nodes = 0;
  int64_t bytes = 0;           // nodes * node_bytes + result bytes
  int64_t results = 0;         // nodes holding a pooled output
  int64_t inserted_nodes = 0;  // ever
  int64_t evicted_nodes = 0;   // ever
  int64_t failed_inserts = 0;  // no room even after evicting everything evictable
};

class PrefixCache {
 public:
  static constexpr int32_t kRoot = -1;  // the parent of a first token
  static constexpr uint64_t kRootKey = 0x9e3779b97f4a7c15ULL;

  explicit PrefixCache(PrefixCacheOptions options);

  // Slots are node ids: [0, capacity()).
  int32_t capacity() const { return capacity_; }
  const PrefixCacheOptions& options() const { return options_; }
  const PrefixCacheStats& stats() const { return stats_; }

  // The child of `parent` (kRoot or a node) for (token, position), or -1.
  int32_t child(int32_t parent, int32_t token, int32_t position) const;
  // The nodes of the longest cached prefix of a sequence (one per matched token), marked used.
  std::vector<int32_t> match(std::span<const int32_t> ids, std::span<const int32_t> positions);
  // Same, into `path` (cleared first), reusing its storage.
  void match(std::span<const int32_t> ids, std::span<const int32_t> positions,
             std::vector<int32_t>& path);
  // Marks the given nodes (and their ancestors) used now, as one use: a batch that looked its
  // sequences up with child() over its own trie.
  void use(std::span<const int32_t> nodes);
  // The length of the longest cached prefix, without marking anything (routing).
  int32_t cached_prefix_length(std::span<const int32_t> ids,
                               std::span<const int32_t> positions) const;

  // Adds the child (token, position) of `parent` (which must exist; kRoot for a first token),
  // evicting unpinned least recently used leaves when the budget is full. Returns the existing
  // child if there is one, the new node, or -1 when nothing more can be evicted.
  int32_t insert(int32_t parent, int32_t token, int32_t position);
  // Removes a leaf (rolling back a failed batch's new nodes, children first). Pins are dropped.
  void remove(int32_t node);

  // Pinned nodes are never evicted (counted: pin twice, unpin twice).
  void pin(int32_t node);
  void unpin(int32_t node);
  // Marks a node and its ancestors used now.
  void touch(int32_t node);

  // The result cache: a sequence's output stored at its last node. Storing evicts other leaves
  // when needed; returns false when it does not fit.
  bool set_result(int32_t node, std::vector<float> values);
  const std::vector<float>* result(int32_t node) const;

  bool alive(int32_t node) const;
  int32_t parent(int32_t node) const { return nodes_[node].parent; }
  int32_t token(int32_t node) const { return nodes_[node].token; }
  int32_t position(int32_t node) const { return nodes_[node].position; }
  int32_t depth(int32_t node) const { return nodes_[node].depth; }
  uint64_t key(int32_t node) const { return nodes_[node].key; }
  bool holds_key(uint64_t key) const;

  // Tests: every invariant (ancestor-closed, child counts, byte totals, the leaf set) holds.
  bool check_invariants() const;

 private:
  struct Node {
    uint64_t key = 0;
    uint64_t last_used = 0;
    int32_t parent = kRoot;
    int32_t token = 0;
    int32_t position = 0;
    int32_t depth = 0;  // path length from the root, this node included
    int32_t children = 0;
    int32_t pins = 0;
    bool alive = false;
    // The last_used its entry in leaves_ was pushed with (0: none; the clock starts at 1).
    uint64_t leaf_stamp = 0;
    std::vector<float> result;
  };
  // An evictable leaf as of its push; stale once the node is used again, gets a child or a pin,
  // or goes (checked when it reaches the top: lazy deletion keeps pin/unpin/touch O(1)).
  struct LeafEntry {
    uint64_t last_used;
    int32_t depth;
    int32_t node;
  };

  uint64_t key_of(int32_t parent, int32_t token, int32_t position) const;
  bool evictable(const Node& n) const { return n.alive && n.children == 0 && n.pins == 0; }
  void enter_leaf_set(int32_t id);  // pushes an entry if it is evictable and has none current
  void rebuild_leaf_heap();
  // Evicts LRU leaves until `bytes` more fit; false if they cannot.
  bool make_room(int64_t bytes);
  void drop(int32_t id);  // frees a leaf
  // The open-addressing key table (linear probing, backward-shift deletion).
  void table_insert(int32_t id);  // `id` must be alive already
  void table_place(int32_t id);
  void table_erase(int32_t id);
  void table_grow();

  PrefixCacheOptions options_;
  int32_t capacity_ = 0;
  uint64_t clock_ = 1;
  std::vector<Node> nodes_;
  std::vector<int32_t> free_;
  std::vector<int32_t> table_;  // node ids by key, -1 empty; size a power of two, at most half full
  int64_t table_used_ = 0;
  std::vector<LeafEntry> leaves_;  // min-heap on (last used, -depth, node)
  PrefixCacheStats stats_;
};

}  // namespace radix::cache
