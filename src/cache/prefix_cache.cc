#include "cache/prefix_cache.h"

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

int32_t PrefixCache::child(int32_t parent, int32_t token, int32_t position) const {
  const auto [begin, end] = by_key_.equal_range(key_of(parent, token, position));
  for (auto it = begin; it != end; ++it) {
    const Node& n = nodes_[it->second];
    // The hash only narrows the search: the node must really be this child.
    if (n.parent == parent && n.token == token && n.position == position) return it->second;
  }
  return -1;
}

std::vector<int32_t> PrefixCache::match(std::span<const int32_t> ids,
                                        std::span<const int32_t> positions) {
  std::vector<int32_t> path;
  int32_t at = kRoot;
  for (size_t i = 0; i < ids.size(); ++i) {
    const int32_t next = child(at, ids[i], positions[i]);
    if (next < 0) break;
    path.push_back(next);
    at = next;
  }
  if (!path.empty()) touch(path.back());
  return path;
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

PrefixCache::LeafKey PrefixCache::leaf_key(int32_t id) const {
  return {nodes_[id].last_used, -nodes_[id].depth, id};
}

void PrefixCache::leave_leaf_set(int32_t id) {
  if (evictable(nodes_[id])) leaves_.erase(leaf_key(id));
}

void PrefixCache::enter_leaf_set(int32_t id) {
  if (evictable(nodes_[id])) leaves_.insert(leaf_key(id));
}

void PrefixCache::touch(int32_t node) {
  ++clock_;
  // Only the deepest node can be a leaf: its ancestors have a child.
  leave_leaf_set(node);
  for (int32_t at = node; at != kRoot; at = nodes_[at].parent) nodes_[at].last_used = clock_;
  enter_leaf_set(node);
}

void PrefixCache::drop(int32_t id) {
  Node& n = nodes_[id];
  leave_leaf_set(id);
  n.pins = 0;
  const auto [begin, end] = by_key_.equal_range(n.key);
  for (auto it = begin; it != end; ++it) {
    if (it->second == id) {
      by_key_.erase(it);
      break;
    }
  }
  stats_.bytes -= options_.node_bytes + static_cast<int64_t>(n.result.size() * sizeof(float));
  if (!n.result.empty()) --stats_.results;
  --stats_.nodes;
  const int32_t parent = n.parent;
  n = Node{};
  free_.push_back(id);
  if (parent != kRoot) {
    leave_leaf_set(parent);  // no-op: it had a child
    --nodes_[parent].children;
    enter_leaf_set(parent);
  }
}

bool PrefixCache::make_room(int64_t bytes, int32_t keep) {
  while (stats_.bytes + bytes > options_.budget_bytes) {
    auto it = leaves_.begin();
    if (it != leaves_.end() && std::get<2>(*it) == keep) ++it;
    if (it == leaves_.end()) return false;
    drop(std::get<2>(*it));
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
  const bool room = make_room(options_.node_bytes, -1);
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
  by_key_.emplace(n.key, id);
  if (parent != kRoot) {
    leave_leaf_set(parent);
    ++nodes_[parent].children;
  }
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

void PrefixCache::pin(int32_t node) {
  leave_leaf_set(node);
  ++nodes_[node].pins;
}

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
    const bool room = make_room(new_bytes - old_bytes, node);
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
  std::set<LeafKey> leaves;
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
  for (size_t i = 0; i < nodes_.size(); ++i) {
    if (!nodes_[i].alive) continue;
    if (children[i] != nodes_[i].children) return false;
    if (evictable(nodes_[i])) leaves.insert(leaf_key(static_cast<int32_t>(i)));
  }
  return nodes == stats_.nodes && bytes == stats_.bytes && results == stats_.results &&
         bytes <= options_.budget_bytes && nodes <= capacity_ && leaves == leaves_;
}

}  // namespace radix::cache
