#include "model/recorded_forwards.h"

#include <algorithm>
#include <cmath>

namespace radix {

int64_t RecordedForwards::max_rows(int64_t layer_weights) {
  if (layer_weights <= kMaxRowsLayerWeights) return kMaxRows;
  return std::max<int64_t>(64, kMaxRows * kMaxRowsLayerWeights / layer_weights);
}

int64_t RecordedForwards::row_bucket(int64_t rows, int64_t max_rows) {
  if (rows > max_rows) return 0;
  if (rows <= 64) return 64;
  // The octave's base: the largest power of two not above rows - 1, then quarters of it.
  int64_t base = 64;
  while (base * 2 < rows) base *= 2;
  const int64_t step = base / 4;
  return (rows + step - 1) / step * step;
}

int64_t RecordedForwards::head_bucket(int64_t rows) {
  int64_t bucket = 8;
  while (bucket < rows) bucket *= 2;
  return bucket;
}

double RecordedForwards::tile_hint(double mean_visible_keys) {
  if (!(mean_visible_keys >= 1)) return 0;
  return std::exp2(std::floor(std::log2(mean_visible_keys)));
}

RecordedForwards::Step RecordedForwards::step(const RecordingKey& key, uint64_t backend_epoch,
                                              uint64_t arena_generation) {
  if (backend_epoch != backend_epoch_ || arena_generation != arena_generation_) {
    recordings_.clear();  // they name memory that has been freed
    held_ = 0;
    backend_epoch_ = backend_epoch;
    arena_generation_ = arena_generation;
  }
  const auto it = recordings_.find(key);
  if (it != recordings_.end()) {
    it->second.last_use = ++clock_;
    return Step::kReplay;
  }
  if (seen_.size() >= kMaxSeen) seen_.clear();
  if (seen_.insert(key).second) return Step::kRunOps;
  return Step::kRecord;
}

const RecordedForwards::Entry* RecordedForwards::find(const RecordingKey& key) const {
  const auto it = recordings_.find(key);
  return it == recordings_.end() ? nullptr : &it->second;
}

void RecordedForwards::store(const RecordingKey& key, Entry entry) {
  if (recordings_.size() >= kMaxRecordings && recordings_.count(key) == 0) {
    auto oldest = recordings_.begin();
    for (auto it = recordings_.begin(); it != recordings_.end(); ++it) {
      if (it->second.last_use < oldest->second.last_use) oldest = it;
    }
    recordings_.erase(oldest);
  }
  entry.last_use = ++clock_;
  recordings_[key] = std::move(entry);
  ++recorded_;
  held_ = static_cast<int64_t>(recordings_.size());
}

RecordingCounters RecordedForwards::counters() const {
  return RecordingCounters{recorded_.load(), replayed_.load(), held_.load()};
}

}  // namespace radix
