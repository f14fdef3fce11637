#include "cache/prefix_cache.h"

#include <algorithm>
#include <limits>
#include <stdexcept>
#include <string>

namespace radix::cache {
namespace {

uint64_t mix(uint64_t x) {  // splitmix64's finaliser
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

}  // namespace

uint64_t path_hash(uint64_t parent_key, int32_t token, int32_t position) {
  const uint64_t tp =
      (static_cast<uint64_t>(static_cast<uint32_t>(token)) << 32) | static_cast<uint32_t>(position);
  return mix(parent_key ^ mix(tp + 0x632be59bd9b4e019ULL));
}

PrefixCache::PrefixCache(PrefixCacheOptions options) : options_(options) {
  if (options_.node_bytes <= 0) throw std::invalid_argument("prefix cache: node_bytes must be > 0");
  if (options_.budget_bytes < 0) throw std::invalid_argument("prefix cache: negative budget");
  if (options_.hash == nullptr) options_.hash = path_hash;
  const int64_t cap = options_.budget_bytes / options_.node_bytes;
  capacity_ = static_cast<int32_t>(std::min<int64_t>(cap, std::numeric_limits<int32_t>::max()));
}

uint64_t PrefixCache::key_of(int32_t parent, int32_t token, int32_t position) const {
  const uint64_t parent_key = parent == kRoot ? kRootKey : nodes_[parent].key;
  return options_.hash(parent_key, token, position);
}

bool PrefixCache::alive(int32_t node) const {
  return node >= 0 && node < static_cast<int32_t>(nodes_.size()) && nodes_[node].alive;
}

void PrefixCache::table_grow() {
  const size_t size = table_.empty() ? 64 : table_.size() * 2;
  table_.assign(size, -1);
  table_used_ = 0;
  for (size_t i = 0; i < nodes_.size(); ++i) {
    if (nodes_[i].alive) table_place(static_cast<int32_t>(i));
  }
}

void PrefixCache::table_place(int32_t id) {
  const size_t mask = table_.size() - 1;
  size_t i = nodes_[id].key & mask;
  while (table_[i] >= 0) i = (i + 1) & mask;
  table_[i] = id;
  ++table_used_;
}

void PrefixCache::table_insert(int32_t id) {
  // At most half full keeps probe runs short. The grow re-places every live node, `id` too.
  if (static_cast<size_t>(table_used_ + 1) * 2 > table_.size()) {
    table_grow();
  } else {
    table_place(id);
  }
}

void PrefixCache::table_erase(int32_t id) {
  const size_t mask = table_.size() - 1;
  size_t i = nodes_[id].key & mask;
  while (table_[i] != id) {
    if (table_[i] < 0) return;  // not there (cannot happen for a live node)
    i = (i + 1) & mask;
  }
  // Backward shift: move later entries of the probe run into the hole unless their home slot
  // lies cyclically in (hole, their slot], where the hole would break their own probe run.
  for (size_t j = (i + 1) & mask; table_[j] >= 0; j = (j + 1) & mask) {
    const size_t home = nodes_[table_[j]].key & mask;
    const bool stays = i <= j ? (i < home && home <= j) : (i < home || home <= j);
    if (stays) continue;
    table_[i] = table_[j];
    i = j;
  }
  table_[i] = -1;
  --table_used_;
}

int32_t PrefixCache::child(int32_t parent, int32_t token, int32_t position) const {
  if (table_.empty()) return -1;
  const uint64_t key = key_of(parent, token, position);
  const size_t mask = table_.size() - 1;
  for (size_t i = key & mask; table_[i] >= 0; i = (i + 1) & mask) {
    const Node& n = nodes_[table_[i]];
    // The hash only narrows the search: the node must really be this child.
    if (n.key == key && n.parent == parent && n.token == token && n.position == position) {
      return table_[i];
    }
  }
  return -1;
}

bool PrefixCache::holds_key(uint64_t key) const {
  if (table_.empty()) return false;
  const size_t mask = table_.size() - 1;
  for (size_t i = key & mask; table_[i] >= 0; i = (i + 1) & mask) {
    if (nodes_[table_[i]].key == key) return true;
  }
  return false;
}

void PrefixCache::match(std::span<const int32_t> ids, std::span<const int32_t> positions,
                        std::vector<int32_t>& path) {
  path.clear();
  int32_t at = kRoot;
  for (size_t i = 0; i < ids.size(); ++i) {
    const int32_t next = child(at, ids[i], positions[i]);
    if (next < 0) break;
    path.push_back(next);
    at = next;
  }
  ++clock_;  // every lookup is a use of its own
  if (!path.empty()) touch(path.back());
}

std::vector<int32_t> PrefixCache::match(std::span<const int32_t> ids,
                                        std::span<const int32_t> positions) {
  std::vector<int32_t> path;
  match(ids, positions, path);
  return path;
}

void PrefixCache::use(std::span<const int32_t> nodes) {
  ++clock_;
  for (const int32_t node : nodes) touch(node);
}

int32_t PrefixCache::cached_prefix_length(std::span<const int32_t> ids,
                                          std::span<const int32_t> positions) const {
  int32_t at = kRoot, length = 0;
  for (size_t i = 0; i < ids.size(); ++i) {
    at = child(at, ids[i], positions[i]);
    if (at < 0) break;
    ++length;
  }
  return length;
}

namespace {

// std::*_heap keep the greatest on top; "greater" puts the least recently used (then deepest,
// then lowest id) there.
struct LeafAfter {
  template <class E>
  bool operator()(const E& a, const E& b) const {
    if (a.last_used != b.last_used) return a.last_used > b.last_used;
    if (a.depth != b.depth) return a.depth < b.depth;
    return a.node > b.node;
  }
};

}  // namespace

void PrefixCache::enter_leaf_set(int32_t id) {
  Node& n = nodes_[id];
  if (!evictable(n) || n.leaf_stamp == n.last_used) return;
  // Stale entries pile up (every touch of a leaf leaves one): rebuild when they outnumber the
  // nodes, O(nodes) once per O(nodes) pushes.
  if (leaves_.size() > 2 * static_cast<size_t>(stats_.nodes) + 64) rebuild_leaf_heap();
  if (n.leaf_stamp == n.last_used) return;  // the rebuild pushed it
  n.leaf_stamp = n.last_used;
  leaves_.push_back({n.last_used, n.depth, id});
  std::push_heap(leaves_.begin(), leaves_.end(), LeafAfter{});
}

void PrefixCache::rebuild_leaf_heap() {
  leaves_.clear();
  for (size_t i = 0; i < nodes_.size(); ++i) {
    Node& n = nodes_[i];
    n.leaf_stamp = 0;
    if (!evictable(n)) continue;
    n.leaf_stamp = n.last_used;
    leaves_.push_back({n.last_used, n.depth, static_cast<int32_t>(i)});
  }
  std::make_heap(leaves_.begin(), leaves_.end(), LeafAfter{});
}

void PrefixCache::touch(int32_t node) {
  // Ancestors of a node stamped now are stamped now too: stop there.
  for (int32_t at = node; at != kRoot && nodes_[at].last_used != clock_; at = nodes_[at].parent) {
    nodes_[at].last_used = clock_;
  }
  // Only the deepest node can be a leaf: its ancestors have a child.
  enter_leaf_set(node);
}

void PrefixCache::drop(int32_t id) {
  Node& n = nodes_[id];
  table_erase(id);
  stats_.bytes -= options_.node_bytes + static_cast<int64_t>(n.result.size() * sizeof(float));
  if (!n.result.empty()) --stats_.results;
  --stats_.nodes;
  const int32_t parent = n.parent;
  n = Node{};
  free_.push_back(id);
  if (parent != kRoot) {
    --nodes_[parent].children;
    enter_leaf_set(parent);
  }
}

bool PrefixCache::make_room(int64_t bytes) {
  while (stats_.bytes + bytes > options_.budget_bytes) {
    if (leaves_.empty()) return false;
    std::pop_heap(leaves_.begin(), leaves_.end(), LeafAfter{});
    const LeafEntry e = leaves_.back();
    leaves_.pop_back();
    Node& n = nodes_[e.node];
    const bool current =
        n.alive && n.leaf_stamp == e.last_used && n.last_used == e.last_used && n.depth == e.depth;
    if (!current) continue;  // stale: the node was used, grew, or went since
    n.leaf_stamp = 0;        // its entry is gone; a later enter_leaf_set pushes a new one
    if (!evictable(n)) continue;
    drop(e.node);
    ++stats_.evicted_nodes;
  }
  return true;
}

int32_t PrefixCache::insert(int32_t parent, int32_t token, int32_t position) {
  if (parent != kRoot && !alive(parent)) {
    throw std::invalid_argument("prefix cache: insert under a node that is not cached");
  }
  if (const int32_t existing = child(parent, token, position); existing >= 0) return existing;
  if (capacity_ == 0) return -1;
  // The parent must survive the eviction that makes room for its child.
  if (parent != kRoot) pin(parent);
  const bool room = make_room(options_.node_bytes);
  if (parent != kRoot) unpin(parent);
  if (!room) {
    ++stats_.failed_inserts;
    return -1;
  }
  int32_t id;
  if (!free_.empty()) {
    id = free_.back();
    free_.pop_back();
  } else {
    id = static_cast<int32_t>(nodes_.size());
    nodes_.emplace_back();
  }
  Node& n = nodes_[id];
  n.key = key_of(parent, token, position);
  n.parent = parent;
  n.token = token;
  n.position = position;
  n.depth = parent == kRoot ? 1 : nodes_[parent].depth + 1;
  n.alive = true;
  table_insert(id);
  if (parent != kRoot) ++nodes_[parent].children;  // no longer a leaf: its entry goes stale
  ++stats_.nodes;
  ++stats_.inserted_nodes;
  stats_.bytes += options_.node_bytes;
  touch(id);
  return id;
}

void PrefixCache::remove(int32_t node) {
  if (!alive(node) || nodes_[node].children != 0) {
    throw std::invalid_argument("prefix cache: remove needs a cached leaf");
  }
  drop(node);
}

void PrefixCache::pin(int32_t node) { ++nodes_[node].pins; }

void PrefixCache::unpin(int32_t node) {
  if (nodes_[node].pins <= 0) throw std::logic_error("prefix cache: unpin of an unpinned node");
  --nodes_[node].pins;
  enter_leaf_set(node);
}

bool PrefixCache::set_result(int32_t node, std::vector<float> values) {
  if (!alive(node)) throw std::invalid_argument("prefix cache: set_result on a node not cached");
  Node& n = nodes_[node];
  const auto old_bytes = static_cast<int64_t>(n.result.size() * sizeof(float));
  const auto new_bytes = static_cast<int64_t>(values.size() * sizeof(float));
  if (new_bytes > old_bytes) {
    pin(node);  // neither the node nor its ancestors may go to make room for its result
    const bool room = make_room(new_bytes - old_bytes);
    unpin(node);
    if (!room) return false;
  }
  if (n.result.empty() && !values.empty()) ++stats_.results;
  if (!n.result.empty() && values.empty()) --stats_.results;
  stats_.bytes += new_bytes - old_bytes;
  n.result = std::move(values);
  return true;
}

const std::vector<float>* PrefixCache::result(int32_t node) const {
  return alive(node) && !nodes_[node].result.empty() ? &nodes_[node].result : nullptr;
}

bool PrefixCache::check_invariants() const {
  int64_t nodes = 0, bytes = 0, results = 0;
  std::vector<int32_t> children(nodes_.size(), 0);
  for (size_t i = 0; i < nodes_.size(); ++i) {
    const Node& n = nodes_[i];
    if (!n.alive) continue;
    ++nodes;
    bytes += options_.node_bytes + static_cast<int64_t>(n.result.size() * sizeof(float));
    if (!n.result.empty()) ++results;
    if (n.parent != kRoot) {
      if (!alive(n.parent)) return false;  // ancestor-closed
      if (nodes_[n.parent].depth + 1 != n.depth) return false;
      if (nodes_[n.parent].last_used < n.last_used) return false;  // a use touches ancestors
      ++children[n.parent];
    } else if (n.depth != 1) {
      return false;
    }
    if (n.key != key_of(n.parent, n.token, n.position)) return false;
    if (child(n.parent, n.token, n.position) != static_cast<int32_t>(i)) return false;
  }
  int64_t table_entries = 0;
  for (const int32_t id : table_) {
    if (id < 0) continue;
    if (!alive(id)) return false;
    ++table_entries;
  }
  if (table_entries != nodes || table_used_ != nodes) return false;
  if (!std::is_heap(leaves_.begin(), leaves_.end(), LeafAfter{})) return false;
  // Every evictable leaf has a current entry in the heap, so eviction can find it.
  std::vector<char> has_entry(nodes_.size(), 0);
  for (const LeafEntry& e : leaves_) {
    const Node& n = nodes_[e.node];
    if (n.alive && n.leaf_stamp == e.last_used && n.last_used == e.last_used &&
        n.depth == e.depth) {
      has_entry[e.node] = 1;
    }
  }
  for (size_t i = 0; i < nodes_.size(); ++i) {
    if (!nodes_[i].alive) continue;
    if (children[i] != nodes_[i].children) return false;
    if (evictable(nodes_[i]) && !has_entry[i]) return false;
  }
  return nodes == stats_.nodes && bytes == stats_.bytes && results == stats_.results &&
         bytes <= options_.budget_bytes && nodes <= capacity_;
}

}  // namespace radix::cache
