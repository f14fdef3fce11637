// Small batches replayed as recordings (docs/backend.md "Recorded work", docs/cuda.md "Recorded
// forwards"). Queueing a forward op by op costs the host a fixed ~2 ms on the 0.6B model (four
// GEMMs and five kernels a layer at 4-10 us each), more than the device needs for a few hundred
// rows. A batch of up to kMaxRows rows is instead padded to a bucket of rows, and the forward of
// each bucket is recorded once (the backend's graphs) and then replayed with one call, its index
// arrays uploaded to the same places first.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <tuple>
#include <vector>

#include "backend/backend.h"
#include "model/model.h"

namespace radix {

// What a recording depends on besides the contents of its inputs: everything that shapes the
// queued ops' arguments.
struct RecordingKey {
  int64_t rows = 0;       // the padded plan rows (row_bucket)
  int64_t head_rows = 0;  // the padded last rows (head_bucket)
  int32_t head = 0;       // HeadKind
  // The attention's key-tile hint, rounded down to a power of two (only its rough size picks a
  // tile, and the rounding keeps the number of recordings small).
  double tile_hint = 0;
  bool window = false;  // whether the batch reaches the sliding window (max position >= window)
  std::vector<uint64_t> prefix;  // the prefix cache hook's own key (PrefixHook::prepare)

  auto tie() const { return std::tie(rows, head_rows, head, tile_hint, window, prefix); }
  bool operator<(const RecordingKey& o) const { return tie() < o.tie(); }
};

class RecordedForwards {
 public:
  // Largest plan (in rows) replayed from a recording, for a model of Qwen3-0.6B's layer size
  // (16 M projection weights a layer) or smaller. On the H200 such a layer's device time reaches
  // its ~60 us of queueing near 1,000 rows, and at 2,048 rows the device's share is twice the
  // host's: past that the padding (up to 1/8 of the rows there) costs more than the queueing
  // saves. A larger layer's device time per row grows with its weights and its queueing does
  // not, so its limit shrinks in proportion (max_rows).
  static constexpr int64_t kMaxRows = 2048;
  static constexpr int64_t kMaxRowsLayerWeights = 16'000'000;
  // The limit for layers of `layer_weights` projection weights: kMaxRows scaled down for layers
  // above kMaxRowsLayerWeights, at least 64.
  static int64_t max_rows(int64_t layer_weights);
  // rows rounded up to 64, 80, 96, 112, 128, 160, 192, ... (four steps an octave, at most 25 %
  // padding, under 12.5 % on average), or 0 past max_rows.
  static int64_t row_bucket(int64_t rows, int64_t max_rows = kMaxRows);
  // head rows rounded up to a power of two, at least 8.
  static int64_t head_bucket(int64_t rows);
  static double tile_hint(double mean_visible_keys);
  // Recordings held at most; past it the least recently replayed goes. Each holds an instantiated
  // graph of a whole forward (~350 nodes); the keys a steady load reaches are a few buckets a
  // head and prompt, and a load that keeps reaching new ones (prompts of ever other lengths
  // through the prefix cache) must not grow the process without bound.
  static constexpr size_t kMaxRecordings = 64;
  // Keys remembered as seen once; past it the memory is cleared (a key then needs two more
  // sightings to be recorded).
  static constexpr size_t kMaxSeen = 4096;

  enum class Step : uint8_t {
    kRunOps,  // first sighting of the key: run op by op (sizes the backend's scratch for it)
    kRecord,  // seen before, no valid recording: record now, then replay
    kReplay,  // a recording exists
  };
  // What to do for `key`, given the backend's memory_epoch() and the arena's generation now:
  // recordings made under other ones are dropped first.
  Step step(const RecordingKey& key, uint64_t backend_epoch, uint64_t arena_generation);
  struct Entry {
    std::unique_ptr<Backend::Recording> recording;
    Tensor out;  // where the recorded forward leaves what the host reads (its head's output)
    uint64_t last_use = 0;
  };
  const Entry* find(const RecordingKey& key) const;
  void store(const RecordingKey& key, Entry entry);
  // After a failed recording: run op by op from now on (the backend cannot record this forward).
  void disable() { disabled_ = true; }
  bool disabled() const { return disabled_; }
  size_t size() const { return recordings_.size(); }
  RecordingCounters counters() const;
  // Counts a replay (store counts the recording). Any thread may read counters().
  void count_replay() { ++replayed_; }

 private:
  std::set<RecordingKey> seen_;
  std::map<RecordingKey, Entry> recordings_;
  uint64_t backend_epoch_ = 0, arena_generation_ = 0, clock_ = 0;
  bool disabled_ = false;
  // Read by other threads (the server's metrics) while the forward's thread counts.
  std::atomic<int64_t> recorded_{0}, replayed_{0}, held_{0};
};

}  // namespace radix
