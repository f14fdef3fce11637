#include "cache/device_prefix_cache.h"

#include <algorithm>
#include <initializer_list>
#include <stdexcept>
#include <string>

namespace radix::cache {
namespace {

// Uploads into `slot`, grown (to a power of two of rows) only when too small: a batch's index
// arrays reuse the previous batch's device buffers instead of allocating and freeing six small
// ones (cudaFree waits for the whole device).
// Rows past host.size(), up to `rows`, get -1.
Tensor upload_i32(Backend& be, Buffer& slot, std::vector<int32_t>& host, int64_t rows = -1) {
  if (rows > static_cast<int64_t>(host.size())) host.resize(static_cast<size_t>(rows), -1);
  const auto n = static_cast<int64_t>(host.size());
  if (slot.empty() || slot.tensor().rows < n) {
    int64_t rows = 256;
    while (rows < n) rows *= 2;
    slot = be.alloc(DType::kI32, rows, 1);
  }
  const Tensor t = slot.tensor().first_rows(n);
  if (n > 0) be.upload(t, host.data(), DType::kI32);
  return t;
}

// One batch's view of the cache for the forward: the prefix rows it reads (a trie of their own),
// each query row's anchor in it, and the slot each new row's K/V goes to.
class BatchHook final : public PrefixHook {
 public:
  Backend* be = nullptr;
  Tensor storage;  // [layers * capacity, kv_cols]
  int64_t capacity = 0;
  int64_t kv_cols = 0;
  int64_t prefix_rows = 0;
  bool any_write = false;
  Tensor prefix_kv;  // [p, kv_cols] scratch
  // >= 0: the prefix rows are the slots [first, first + p) in order (a prompt cached in one go),
  // read in place instead of gathered.
  int64_t prefix_first_slot = -1;
  // Host forms of the index arrays, uploaded by prepare into `buffers` (reused batch to batch).
  std::array<Buffer, 6>* buffers = nullptr;
  std::vector<int32_t> host_slot, host_end, host_pos, host_row_anchor, host_token_anchor,
      host_write;
  Tensor prefix_slot;   // [p]
  Tensor prefix_end;    // [p]
  Tensor prefix_pos;    // [p]
  Tensor row_anchor;    // [rows]
  Tensor token_anchor;  // [tokens]
  Tensor write_slot;    // [rows], -1: not stored

  bool recordable() const override { return true; }

  std::vector<uint64_t> prepare(int64_t rows, bool flat) override {
    std::array<Buffer, 6>& b = *buffers;
    if (prefix_rows > 0) {
      if (prefix_first_slot < 0) prefix_slot = upload_i32(*be, b[0], host_slot);
      prefix_end = upload_i32(*be, b[1], host_end);
      prefix_pos = upload_i32(*be, b[2], host_pos);
      row_anchor = upload_i32(*be, b[3], host_row_anchor, rows);          // padding rows: no anchor
      if (flat) token_anchor = upload_i32(*be, b[4], host_token_anchor);  // read only then
    }
    if (any_write) write_slot = upload_i32(*be, b[5], host_write, rows);  // padding: not stored
    auto address = [](const Tensor& t) { return reinterpret_cast<uintptr_t>(t.data); };
    std::vector<uint64_t> key{address(storage),
                              static_cast<uint64_t>(capacity),
                              static_cast<uint64_t>(kv_cols),
                              static_cast<uint64_t>(prefix_rows),
                              static_cast<uint64_t>(prefix_first_slot),
                              any_write,
                              address(prefix_kv)};
    // The anchors attend reads: the tokens' in the flat mode, the rows' otherwise (so that a
    // row-mode key does not change with the batch's token count).
    const Tensor& anchor = flat ? token_anchor : row_anchor;
    for (const Tensor* t : std::initializer_list<const Tensor*>{
             &prefix_slot, &prefix_end, &prefix_pos, &anchor, &write_slot}) {
      key.push_back(address(*t));
      key.push_back(static_cast<uint64_t>(t->rows));
    }
    key.push_back(flat);
    return key;
  }

  void attend(int32_t layer, const Tensor& rows, const Tensor& qkv, const AttentionShape& shape,
              const AttentionMask& mask, const Tensor& out, bool flat) override {
    const int64_t q_cols = static_cast<int64_t>(shape.num_q_heads) * shape.head_dim;
    // Layer-major, so that a layer's cached keys are one dense block: attention reads a prompt
    // cached in one go as consecutive 4-8 KiB rows, not rows strided by every layer's K/V (which
    // spread a layer's 8 MiB read over 300 MiB and ran at a fraction of memory bandwidth).
    const Tensor layer_store = storage.row_slice(layer * capacity, capacity);
    if (any_write) be->scatter_rows(rows.col_slice(q_cols, kv_cols), write_slot, layer_store);
    if (prefix_rows == 0) {
      be->attention(qkv, shape, mask, out);
      return;
    }
    Tensor keys = prefix_kv;
    if (prefix_first_slot >= 0) {
      keys = layer_store.row_slice(prefix_first_slot, prefix_rows);
    } else {
      be->gather_rows(layer_store, prefix_slot, prefix_kv);
    }
    const Tensor anchor = (flat ? token_anchor : row_anchor).first_rows(qkv.rows);
    be->prefix_attention(qkv, shape, mask, PrefixKeys{keys, prefix_end, prefix_pos, anchor}, out);
  }
};

}  // namespace

DevicePrefixCache::DevicePrefixCache(Backend& backend, int32_t num_layers, int32_t num_kv_heads,
                                     int32_t head_dim, DevicePrefixCacheOptions options)
    : be_(backend),
      layers_(num_layers),
      kv_cols_(2 * static_cast<int64_t>(num_kv_heads) * head_dim),
      node_bytes_(num_layers * kv_cols_ *
                  static_cast<int64_t>(dtype_size(backend.activation_dtype()))),
      options_(options),
      index_(PrefixCacheOptions{options.budget_bytes, std::max<int64_t>(1, node_bytes_)}) {
  if (num_layers <= 0 || kv_cols_ <= 0) {
    throw std::invalid_argument("prefix cache: the model has no layers or no K/V heads");
  }
  if (!be_.supports_prefix_cache()) {
    throw BackendError(be_.name() + ": prefix cache not supported yet");
  }
  if (options_.min_prefix_tokens < 1) options_.min_prefix_tokens = 1;
  if (index_.capacity() > 0) {
    storage_ = be_.alloc(be_.activation_dtype(), int64_t{layers_} * index_.capacity(), kv_cols_);
  }
}

bool DevicePrefixCache::seen_before(uint64_t key) {
  if (seen_keys_.empty()) seen_keys_.assign(kSeenKeySlots, 0);
  constexpr uint64_t kBuckets = kSeenKeySlots / kSeenKeyWays;
  uint64_t* bucket = seen_keys_.data() + (key & (kBuckets - 1)) * kSeenKeyWays;
  for (int32_t w = 0; w < kSeenKeyWays; ++w) {
    if (bucket[w] == key) return true;
  }
  std::copy_backward(bucket, bucket + kSeenKeyWays - 1, bucket + kSeenKeyWays);  // newest first
  bucket[0] = key;
  return false;
}

int32_t DevicePrefixCache::cached_prefix_length(std::span<const int32_t> ids,
                                                std::span<const int32_t> positions) const {
  std::lock_guard<std::mutex> lock(mu_);
  return index_.cached_prefix_length(ids, positions);
}

PrefixCacheSnapshot DevicePrefixCache::snapshot() const {
  std::lock_guard<std::mutex> lock(mu_);
  PrefixCacheSnapshot s;
  s.budget_bytes = options_.budget_bytes;
  s.bytes = index_.stats().bytes;
  s.nodes = index_.stats().nodes;
  s.results = index_.stats().results;
  s.evicted_nodes = index_.stats().evicted_nodes;
  s.sequences = counters_.sequences;
  s.lookup_tokens = counters_.lookup_tokens;
  s.hit_tokens = counters_.hit_tokens;
  s.result_hits = counters_.result_hits;
  s.prefix_hits = counters_.prefix_hits;
  return s;
}

std::vector<std::vector<float>> DevicePrefixCache::run(const RaggedBatch& batch,
                                                       const FoldOptions& fold,
                                                       const Forward& forward,
                                                       const FoldPlan* whole) {
  std::unique_lock<std::mutex> lock(mu_);
  const int32_t num_seqs = batch.num_sequences();
  std::vector<std::vector<float>> outputs(num_seqs);
  std::vector<int32_t> anchor(num_seqs, -1), cut(num_seqs, 0);
  std::vector<int32_t> order;  // sequences still to run
  std::vector<int32_t> pinned;
  std::vector<int32_t> path;
  int64_t cut_tokens = 0;
  // A folded batch is looked up over its own trie: each unique row once, and a subtree not at
  // all below its first miss (dl19: the template's rows once, not once per document).
  const bool by_rows = whole != nullptr && whole->folded;
  std::vector<int32_t> row_node, used;
  if (by_rows) {
    row_node.assign(whole->num_rows, -1);
    for (int32_t r = 0; r < whole->num_rows; ++r) {
      if (whole->gather[r] < 0) continue;  // padding
      const int32_t p = whole->parent[r];
      const int32_t parent = p < 0 ? PrefixCache::kRoot : row_node[p];
      if (p >= 0 && parent < 0) continue;
      row_node[r] = index_.child(parent, whole->ids[r], whole->positions[r]);
    }
  }
  for (int32_t s = 0; s < num_seqs; ++s) {
    const int32_t begin = batch.cu_seqlens[s], len = batch.cu_seqlens[s + 1] - begin;
    ++counters_.sequences;
    counters_.lookup_tokens += len;
    if (by_rows) {
      path.clear();
      for (int32_t t = begin; t < begin + len && row_node[whole->scatter[t]] >= 0; ++t) {
        path.push_back(row_node[whole->scatter[t]]);
      }
      if (!path.empty()) used.push_back(path.back());
    } else {
      const std::span<const int32_t> ids(batch.ids.data() + begin, len);
      const std::span<const int32_t> pos(batch.positions.data() + begin, len);
      index_.match(ids, pos, path);
    }
    const auto matched = static_cast<int32_t>(path.size());
    if (options_.results && len > 0 && matched == len) {
      if (const std::vector<float>* r = index_.result(path.back())) {
        outputs[s] = *r;
        counters_.hit_tokens += len;
        ++counters_.result_hits;
        continue;
      }
    }
    // The last token always runs: the head reads its row.
    const int32_t h = std::min(matched, len - 1);
    if (h >= options_.min_prefix_tokens) {
      anchor[s] = path[h - 1];
      cut[s] = h;
      cut_tokens += h;
    }
    order.push_back(s);
  }
  if (by_rows) index_.use(used);

  // Does reading pay? The rows a hit skips are its anchors' paths (a trie: shared ancestors once)
  // in a folded batch, every cut token in an identity one; what the batch computes without the
  // cache is its unique rows. A hit that skips a sliver of them (a reranker template under 100
  // distinct passages) saves less than the split plan and the second key range cost.
  std::vector<int32_t> anchors;  // distinct, ascending
  for (const int32_t s : order) {
    if (anchor[s] >= 0) anchors.push_back(anchor[s]);
  }
  std::sort(anchors.begin(), anchors.end());
  anchors.erase(std::unique(anchors.begin(), anchors.end()), anchors.end());
  const int64_t unique = whole != nullptr && whole->folded ? whole->num_unique : batch.num_tokens();
  int64_t read_rows = 0;  // the rows the hits skip, when read
  if (!anchors.empty()) {
    int64_t skipped = cut_tokens;
    if (fold.threshold > 0.0) {
      skipped = 0;  // the union of the anchors' paths, each node once
      std::vector<int32_t> seen;
      for (const int32_t a : anchors) {
        for (int32_t at = a; at != PrefixCache::kRoot; at = index_.parent(at)) seen.push_back(at);
      }
      std::sort(seen.begin(), seen.end());
      skipped = std::unique(seen.begin(), seen.end()) - seen.begin();
    }
    if (static_cast<double>(skipped) < options_.min_hit_fraction * static_cast<double>(unique)) {
      std::fill(anchor.begin(), anchor.end(), -1);
      std::fill(cut.begin(), cut.end(), 0);
      anchors.clear();
    } else {
      read_rows = skipped;
    }
  }
  for (const int32_t s : order) {
    if (anchor[s] < 0) continue;
    counters_.hit_tokens += cut[s];
    ++counters_.prefix_hits;
    index_.pin(anchor[s]);
    pinned.push_back(anchor[s]);
  }

  std::vector<int32_t> new_nodes;
  try {
    if (!order.empty()) {
      // Nothing cut off and nothing answered: the batch is its own rest and runs its own plan.
      const bool as_is =
          whole != nullptr && anchors.empty() && static_cast<int32_t>(order.size()) == num_seqs;
      RaggedBatch rest_storage;
      FoldPlan plan_storage;
      if (!as_is) {
        // Sequences with the same anchor fold together; different anchors never share a row.
        std::stable_sort(order.begin(), order.end(),
                         [&](int32_t a, int32_t b) { return anchor[a] < anchor[b]; });
        std::vector<int32_t> group_starts;
        for (size_t i = 0; i < order.size(); ++i) {
          const int32_t s = order[i];
          if (i == 0 || anchor[s] != anchor[order[i - 1]]) {
            group_starts.push_back(static_cast<int32_t>(i));
          }
          for (int32_t t = batch.cu_seqlens[s] + cut[s]; t < batch.cu_seqlens[s + 1]; ++t) {
            rest_storage.ids.push_back(batch.ids[t]);
            rest_storage.positions.push_back(batch.positions[t]);
          }
          rest_storage.cu_seqlens.push_back(static_cast<int32_t>(rest_storage.ids.size()));
        }
        group_starts.push_back(static_cast<int32_t>(order.size()));
        plan_storage = build_grouped_fold_plan(rest_storage.ids, rest_storage.positions,
                                               rest_storage.cu_seqlens, group_starts, fold);
      }
      const RaggedBatch& rest = as_is ? batch : rest_storage;
      const FoldPlan& plan = as_is ? *whole : plan_storage;

      // The prefix rows: the distinct anchors' paths, laid out as a trie in DFS pre-order (a fold
      // plan over node-id paths does exactly that), in group order.
      anchors.clear();
      for (const int32_t s : order) {
        if (anchor[s] >= 0 && (anchors.empty() || anchors.back() != anchor[s])) {
          anchors.push_back(anchor[s]);
        }
      }
      FoldPlan prefix;
      std::vector<int32_t> prefix_pos;
      if (!anchors.empty()) {
        std::vector<int32_t> path_ids, path_pos, path_cu{0};
        for (const int32_t a : anchors) {
          const size_t start = path_ids.size();
          for (int32_t at = a; at != PrefixCache::kRoot; at = index_.parent(at)) {
            path_ids.push_back(at);
          }
          std::reverse(path_ids.begin() + static_cast<ptrdiff_t>(start), path_ids.end());
          for (size_t i = start; i < path_ids.size(); ++i) {
            path_pos.push_back(static_cast<int32_t>(i - start));
          }
          path_cu.push_back(static_cast<int32_t>(path_ids.size()));
        }
        prefix = build_fold_plan(path_ids, path_pos, path_cu);
        prefix_pos.resize(prefix.num_rows);
        for (int32_t r = 0; r < prefix.num_rows; ++r) {
          prefix_pos[r] = index_.position(prefix.ids[r]);
        }
      }

      // Each query row's anchor row in the prefix.
      std::vector<int32_t> row_anchor, token_anchor;
      if (prefix.num_rows > 0) {
        row_anchor.assign(plan.num_rows, -1);
        token_anchor.assign(rest.ids.size(), -1);
        for (size_t i = 0, a = 0; i < order.size(); ++i) {
          const int32_t s = order[i];
          if (anchor[s] < 0) continue;
          while (anchors[a] != anchor[s]) ++a;
          const int32_t row = prefix.last_rows[a];
          for (int32_t t = rest.cu_seqlens[i]; t < rest.cu_seqlens[i + 1]; ++t) {
            token_anchor[t] = row;
            row_anchor[plan.scatter[t]] = row;
          }
        }
      }

      // Which new rows to store: those likely to recur. A row on the path of two or more of the
      // batch's sequences (a shared prompt, template or query) is stored; a row of one sequence
      // only in a small batch (a stream request, whose whole prompt the next request may
      // continue). A batch of many distinct documents stores only what they share, so it
      // neither pays for thousands of insertions nor flushes the prompts others reuse.
      // Sequences shorter than the minimum are never stored. (docs/prefix_cache.md)
      std::vector<int32_t> node_of, write;
      bool any_write = false;
      if (index_.capacity() > 0) {
        // Sequences whose path holds the row (counted twice each when all are stored whole).
        std::vector<int32_t> through(plan.num_rows, 0);
        const bool whole_seqs =
            static_cast<int64_t>(order.size()) <= options_.store_whole_max_sequences;
        for (size_t i = 0; i < order.size(); ++i) {
          const int32_t s = order[i];
          if (batch.cu_seqlens[s + 1] - batch.cu_seqlens[s] < options_.min_prefix_tokens) continue;
          through[plan.last_rows[i]] += whole_seqs ? 2 : 1;
        }
        // Children come after their parents (DFS pre-order, or flat order in the identity one).
        int64_t shared = 0;
        for (int32_t r = plan.num_rows - 1; r >= 0; --r) {
          if (plan.parent[r] >= 0) through[plan.parent[r]] += through[r];
          if (!whole_seqs && through[r] >= 2) ++shared;
        }
        // What a large batch shares pays to store only if a later batch like it would read it:
        // with those rows cached, this batch's hit would have cleared the read bar. A reranker's
        // template and query (~60 of ~500 rows a request) do not under a GPU's bar of 1/2.
        if (!whole_seqs && static_cast<double>(read_rows + shared) <
                               options_.min_hit_fraction * static_cast<double>(unique)) {
          std::fill(through.begin(), through.end(), 0);
        }
        node_of.assign(plan.num_rows, -1);
        write.assign(plan.num_rows, -1);
        // A large batch's shared rows go in on their second sighting: their path keys (the
        // index's hash chain) are looked up in the seen-once filter, the unseen ones recorded.
        const bool seen_twice = !whole_seqs && options_.shared_rows_seen_twice;
        std::vector<uint64_t> row_key(seen_twice ? plan.num_rows : 0);
        const HashFn hash = index_.options().hash;
        for (int32_t r = 0; r < plan.num_rows; ++r) {
          if (through[r] < 2) continue;
          int32_t parent = PrefixCache::kRoot;
          uint64_t parent_key = PrefixCache::kRootKey;
          if (plan.parent[r] >= 0) {
            parent = node_of[plan.parent[r]];
            if (seen_twice) parent_key = row_key[plan.parent[r]];
          } else if (!row_anchor.empty() && row_anchor[r] >= 0) {
            parent = prefix.ids[row_anchor[r]];
            parent_key = index_.key(parent);
          }
          if (seen_twice) row_key[r] = hash(parent_key, plan.ids[r], plan.positions[r]);
          const bool parent_stored = plan.parent[r] < 0 || parent >= 0;
          int32_t node = parent_stored ? index_.child(parent, plan.ids[r], plan.positions[r]) : -1;
          if (node < 0) {
            // Recorded even under a parent not stored, so that the path's next sighting stores
            // all of it.
            const bool admitted = !seen_twice || seen_before(row_key[r]);
            if (!parent_stored || !admitted) continue;
            node = index_.insert(parent, plan.ids[r], plan.positions[r]);
            if (node < 0) continue;
            new_nodes.push_back(node);
            write[r] = node;
            any_write = true;
          }
          node_of[r] = node;
          index_.pin(node);  // neither evicted nor reused while this batch runs
          pinned.push_back(node);
        }
      }

      BatchHook hook;
      hook.be = &be_;
      hook.storage = storage_.tensor();
      hook.capacity = index_.capacity();
      hook.kv_cols = kv_cols_;
      hook.prefix_rows = prefix.num_rows;
      hook.any_write = any_write;
      if (prefix.num_rows > 0) {
        bool consecutive = true;
        for (size_t i = 1; i < prefix.ids.size() && consecutive; ++i) {
          consecutive = prefix.ids[i] == prefix.ids[0] + static_cast<int32_t>(i);
        }
        if (consecutive) {
          hook.prefix_first_slot = prefix.ids[0];
        } else {
          if (prefix_kv_.empty() || prefix_kv_.tensor().rows < prefix.num_rows) {
            prefix_kv_ = be_.alloc(be_.activation_dtype(), prefix.num_rows, kv_cols_);
          }
          hook.prefix_kv = prefix_kv_.tensor().first_rows(prefix.num_rows);
          hook.host_slot = prefix.ids;
        }
        hook.host_end = prefix.subtree_end;
        hook.host_pos = std::move(prefix_pos);
        hook.host_row_anchor = std::move(row_anchor);
        hook.host_token_anchor = std::move(token_anchor);
      }
      if (any_write) hook.host_write = write;
      hook.buffers = &index_buffers_;
      // Neither reading nor storing: the forward runs exactly as with the cache off.
      PrefixHook* use_hook = prefix.num_rows > 0 || any_write ? &hook : nullptr;

      lock.unlock();  // the forward reads only this batch's arrays; its nodes are pinned
      std::vector<std::vector<float>> ran = forward(rest, plan, use_hook);
      lock.lock();
      if (ran.size() != order.size()) {
        throw std::runtime_error("prefix cache: the forward returned " +
                                 std::to_string(ran.size()) + " outputs for " +
                                 std::to_string(order.size()) + " sequences");
      }
      for (size_t i = 0; i < order.size(); ++i) {
        const int32_t node = node_of.empty() ? -1 : node_of[plan.last_rows[i]];
        if (options_.results && node >= 0) index_.set_result(node, ran[i]);
        outputs[order[i]] = std::move(ran[i]);
      }
    }
  } catch (...) {
    if (!lock.owns_lock()) lock.lock();
    for (const int32_t node : pinned) index_.unpin(node);
    // The new nodes hold no K/V (or partial): forget them, children first.
    for (auto it = new_nodes.rbegin(); it != new_nodes.rend(); ++it) index_.remove(*it);
    throw;
  }
  for (const int32_t node : pinned) index_.unpin(node);
  return outputs;
}

}  // namespace radix::cache
