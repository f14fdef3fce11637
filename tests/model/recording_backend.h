// A test-only Backend that records on the host what the CUDA backend records as graphs
// (backend.h "recorded work"), so that the model's recorded forwards
// (src/model/recorded_forwards.h) run in CI without a GPU.
//
// It wraps a real backend (the CPU one): every op goes to it, except between begin_recording and
// end_recording, when the op's arguments are copied into a closure (Tensors, masks and prefix keys
// are plain structs naming backend memory) and appended to the recording instead; replay runs the
// closures in order, so a replay reads whatever the caller put at those places since. As on the
// device, a recording holds no host transfers: upload, download, synchronize and alloc throw
// BackendError while recording (and count as transfer_while_recording).
//
// It also checks what a device could not: a replay after memory_epoch() changed, or of a recording
// that names memory freed since (the arena grew), throws BackendError instead of reading freed
// memory; so does an op naming memory this backend did not allocate. The knobs simulate the
// device's events: bump_memory_epoch (scratch that grew), fail_next_recording (an op that cannot
// be captured, or a capture that breaks).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <iterator>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "backend/backend.h"

namespace radix::testing {

class RecordingBackend final : public Backend {
 public:
  // How the next recording fails (fail_next_recording).
  enum class Failure : uint8_t {
    kNone,
    kBeginThrows,  // begin_recording throws (the device cannot record now)
    kOpThrows,     // the op at index `at_op` of the recording throws; end_recording then throws
    kEndThrows,    // every op records, then end_recording throws (the capture was invalidated)
  };

  struct Counters {
    int64_t recordings = 0;                // recordings made (end_recording returned one)
    int64_t failed_recordings = 0;         // recordings that ended in an error
    int64_t replays = 0;                   // replay calls
    int64_t direct_ops = 0;                // ops run while not recording (not through replay)
    int64_t recorded_ops = 0;              // ops appended to recordings
    int64_t replayed_ops = 0;              // ops run by replays
    int64_t transfer_while_recording = 0;  // upload/download/synchronize/alloc while recording
  };

  explicit RecordingBackend(std::unique_ptr<Backend> inner)
      : inner_(std::move(inner)), allocs_(std::make_shared<Allocations>()) {}

  // ---- test knobs and counters ---------------------------------------------------------------
  const Counters& counters() const { return counters_; }
  // Simulates the backend freeing its scratch (grown for a larger batch): every recording made
  // before is stale, and replaying one throws.
  void bump_memory_epoch() { ++epoch_bumps_; }
  void fail_next_recording(Failure failure, int at_op = 0) {
    failure_ = failure;
    fail_at_op_ = at_op;
  }
  bool recording() const { return current_ != nullptr; }

  // ---- Backend -------------------------------------------------------------------------------
  std::string name() const override { return "recording(" + inner_->name() + ")"; }
  DType weight_dtype() const override { return inner_->weight_dtype(); }
  DType activation_dtype() const override { return inner_->activation_dtype(); }
  DType residual_dtype() const override { return inner_->residual_dtype(); }

  Buffer alloc(DType dtype, int64_t rows, int64_t cols) override {
    no_transfer("alloc");
    auto inner_buffer = std::make_shared<Buffer>(inner_->alloc(dtype, rows, cols));
    const Tensor view = inner_buffer->tensor();
    const uint64_t id = allocs_->next_id++;
    const auto base = reinterpret_cast<uintptr_t>(view.data);
    const size_t bytes = static_cast<size_t>(view.numel()) * dtype_size(view.dtype);
    allocs_->by_base[base] = Allocation{std::max<size_t>(bytes, 1), id};
    allocs_->live.insert(id);
    // The owner frees the inner buffer and forgets the allocation (the registry outlives this
    // backend if a Buffer does).
    std::shared_ptr<void> owner(view.data,
                                [allocs = allocs_, inner_buffer, base, id](void*) mutable {
                                  const auto it = allocs->by_base.find(base);
                                  if (it != allocs->by_base.end() && it->second.id == id)
                                    allocs->by_base.erase(it);
                                  allocs->live.erase(id);
                                  inner_buffer.reset();
                                });
    return Buffer(view, std::move(owner));
  }
  void upload(const Tensor& dst, const void* host, DType host_dtype) override {
    no_transfer("upload");
    inner_->upload(dst, host, host_dtype);
  }
  void download(const Tensor& src, float* host) override {
    no_transfer("download");
    inner_->download(src, host);
  }
  void fill_random_normal(const Tensor& dst, uint64_t seed, float std,
                          uint64_t first_index) override {
    op("fill_random_normal", {dst}, [inner = inner_.get(), dst, seed, std, first_index] {
      inner->fill_random_normal(dst, seed, std, first_index);
    });
  }
  void fill_constant(const Tensor& dst, float value) override {
    op("fill_constant", {dst},
       [inner = inner_.get(), dst, value] { inner->fill_constant(dst, value); });
  }
  void synchronize() override {
    no_transfer("synchronize");
    inner_->synchronize();
  }

  void embedding(const Tensor& table, const Tensor& ids, const Tensor& out, float scale) override {
    op("embedding", {table, ids, out}, [inner = inner_.get(), table, ids, out, scale] {
      inner->embedding(table, ids, out, scale);
    });
  }
  void rms_norm(const Tensor& x, const Tensor& weight, float eps, const Tensor& out,
                NormWeight mode, const Tensor& out_scale) override {
    op("rms_norm", {x, weight, out, out_scale},
       [inner = inner_.get(), x, weight, eps, out, mode, out_scale] {
         inner->rms_norm(x, weight, eps, out, mode, out_scale);
       });
  }
  void add_rms_norm(const Tensor& residual, const Tensor& delta, const Tensor& weight, float eps,
                    const Tensor& normed, NormWeight mode, const Tensor& normed_scale) override {
    op("add_rms_norm", {residual, delta, weight, normed, normed_scale},
       [inner = inner_.get(), residual, delta, weight, eps, normed, mode, normed_scale] {
         inner->add_rms_norm(residual, delta, weight, eps, normed, mode, normed_scale);
       });
  }
  void linear(const Tensor& x, const Tensor& w, const Tensor& out, bool accumulate,
              const Tensor& bias) override {
    op("linear", {x, w, out, bias}, [inner = inner_.get(), x, w, out, accumulate, bias] {
      inner->linear(x, w, out, accumulate, bias);
    });
  }
  void qk_norm_rope(const Tensor& qkv, const AttentionShape& shape, const Tensor& q_norm,
                    const Tensor& k_norm, const Tensor& positions, float eps,
                    float rope_theta) override {
    op("qk_norm_rope", {qkv, q_norm, k_norm, positions},
       [inner = inner_.get(), qkv, shape, q_norm, k_norm, positions, eps, rope_theta] {
         inner->qk_norm_rope(qkv, shape, q_norm, k_norm, positions, eps, rope_theta);
       });
  }
  void rope(const Tensor& qkv, const AttentionShape& shape, const Tensor& positions,
            const Tensor& inv_freq) override {
    op("rope", {qkv, positions, inv_freq}, [inner = inner_.get(), qkv, shape, positions, inv_freq] {
      inner->rope(qkv, shape, positions, inv_freq);
    });
  }
  void attention(const Tensor& qkv, const AttentionShape& shape, const AttentionMask& mask,
                 const Tensor& out) override {
    op("attention", {qkv, out, mask.cu_seqlens, mask.subtree_end, mask.positions},
       [inner = inner_.get(), qkv, shape, mask, out] { inner->attention(qkv, shape, mask, out); });
  }
  void gated_activation(const Tensor& gate_up, Activation act, const Tensor& out,
                        const Tensor& out_scale) override {
    op("gated_activation", {gate_up, out, out_scale},
       [inner = inner_.get(), gate_up, act, out, out_scale] {
         inner->gated_activation(gate_up, act, out, out_scale);
       });
  }
  void gather_rows(const Tensor& src, const Tensor& index, const Tensor& out) override {
    op("gather_rows", {src, index, out},
       [inner = inner_.get(), src, index, out] { inner->gather_rows(src, index, out); });
  }

  bool supports_fp8() const override { return inner_->supports_fp8(); }
  void quantize_fp8_rows(const Tensor& src, const Tensor& dst, const Tensor& scale) override {
    op("quantize_fp8_rows", {src, dst, scale},
       [inner = inner_.get(), src, dst, scale] { inner->quantize_fp8_rows(src, dst, scale); });
  }
  void linear_fp8(const Tensor& x, const Tensor& x_scale, const Tensor& w, const Tensor& w_scale,
                  const Tensor& out, bool accumulate, const Tensor& bias) override {
    op("linear_fp8", {x, x_scale, w, w_scale, out, bias},
       [inner = inner_.get(), x, x_scale, w, w_scale, out, accumulate, bias] {
         inner->linear_fp8(x, x_scale, w, w_scale, out, accumulate, bias);
       });
  }

  bool supports_prefix_cache() const override { return inner_->supports_prefix_cache(); }
  void prefix_attention(const Tensor& qkv, const AttentionShape& shape, const AttentionMask& mask,
                        const PrefixKeys& prefix, const Tensor& out) override {
    op("prefix_attention",
       {qkv, out, mask.cu_seqlens, mask.subtree_end, mask.positions, prefix.kv, prefix.subtree_end,
        prefix.positions, prefix.anchor},
       [inner = inner_.get(), qkv, shape, mask, prefix, out] {
         inner->prefix_attention(qkv, shape, mask, prefix, out);
       });
  }
  void scatter_rows(const Tensor& src, const Tensor& index, const Tensor& out) override {
    op("scatter_rows", {src, index, out},
       [inner = inner_.get(), src, index, out] { inner->scatter_rows(src, index, out); });
  }

  bool supports_recording() const override { return true; }
  void begin_recording() override {
    if (current_ != nullptr) throw BackendError(name() + ": begin_recording while recording");
    if (failure_ == Failure::kBeginThrows) {
      failure_ = Failure::kNone;
      ++counters_.failed_recordings;
      throw BackendError(name() + ": begin_recording fails (test knob)");
    }
    current_ = std::make_unique<HostRecording>();
    current_->epoch = memory_epoch();
    current_failure_ = failure_;
    failure_ = Failure::kNone;
  }
  std::unique_ptr<Recording> end_recording() override {
    if (current_ == nullptr) throw BackendError(name() + ": end_recording without a recording");
    std::unique_ptr<HostRecording> done = std::move(current_);
    const Failure failure = current_failure_;
    current_failure_ = Failure::kNone;
    if (done->broken || failure == Failure::kEndThrows) {
      ++counters_.failed_recordings;
      throw BackendError(name() + ": the recording broke (" +
                         (done->broken ? "an op failed" : "test knob") + ")");
    }
    ++counters_.recordings;
    return done;
  }
  void replay(const Recording& recording) override {
    if (current_ != nullptr) throw BackendError(name() + ": replay while recording");
    const auto* r = dynamic_cast<const HostRecording*>(&recording);
    if (r == nullptr) throw BackendError(name() + ": replay of a recording made elsewhere");
    if (r->epoch != memory_epoch()) {
      throw BackendError(name() + ": replay of a recording made at memory epoch " +
                         std::to_string(r->epoch) + ", now " + std::to_string(memory_epoch()));
    }
    for (const RecordedOp& o : r->ops) {
      for (const uint64_t id : o.allocations) {
        if (allocs_->live.count(id) == 0) {
          throw BackendError(name() + ": replay of " + o.name + " names freed memory");
        }
      }
    }
    ++counters_.replays;
    for (const RecordedOp& o : r->ops) {
      o.run();
      ++counters_.replayed_ops;
    }
  }
  uint64_t memory_epoch() const override { return inner_->memory_epoch() + epoch_bumps_; }

 private:
  struct Allocation {
    size_t bytes = 0;
    uint64_t id = 0;
  };
  struct Allocations {
    std::map<uintptr_t, Allocation> by_base;
    std::set<uint64_t> live;
    uint64_t next_id = 1;
  };
  struct RecordedOp {
    std::string name;
    std::function<void()> run;
    std::vector<uint64_t> allocations;  // what its tensors point into, checked live at replay
  };
  struct HostRecording final : Recording {
    std::vector<RecordedOp> ops;
    uint64_t epoch = 0;
    bool broken = false;  // an op failed while recording
  };

  void no_transfer(const char* what) {
    if (current_ == nullptr) return;
    ++counters_.transfer_while_recording;
    current_->broken = true;
    throw BackendError(name() + ": " + what + " while recording");
  }

  // The allocation of each named tensor (empty tensors skipped); throws for memory this backend
  // did not allocate, which a recording could not vouch for.
  std::vector<uint64_t> allocations_of(const char* what, std::initializer_list<Tensor> tensors) {
    std::vector<uint64_t> ids;
    for (const Tensor& t : tensors) {
      if (t.data == nullptr) continue;
      const auto p = reinterpret_cast<uintptr_t>(t.data);
      auto it = allocs_->by_base.upper_bound(p);
      if (it == allocs_->by_base.begin() ||
          p >= std::prev(it)->first + std::prev(it)->second.bytes) {
        throw BackendError(name() + ": " + what + " names memory this backend did not allocate");
      }
      ids.push_back(std::prev(it)->second.id);
    }
    return ids;
  }

  template <typename Run>
  void op(const char* what, std::initializer_list<Tensor> tensors, Run run) {
    if (current_ == nullptr) {
      ++counters_.direct_ops;
      run();
      return;
    }
    if (current_->broken) throw BackendError(name() + ": " + what + " after a failed op");
    if (current_failure_ == Failure::kOpThrows &&
        static_cast<int>(current_->ops.size()) == fail_at_op_) {
      current_->broken = true;
      throw BackendError(name() + ": " + what + " cannot be recorded (test knob)");
    }
    std::vector<uint64_t> ids;
    try {
      ids = allocations_of(what, tensors);
    } catch (...) {
      current_->broken = true;
      throw;
    }
    current_->ops.push_back(
        RecordedOp{what, std::function<void()>(std::move(run)), std::move(ids)});
    ++counters_.recorded_ops;
  }

  std::unique_ptr<Backend> inner_;
  std::shared_ptr<Allocations> allocs_;
  std::unique_ptr<HostRecording> current_;
  Counters counters_;
  uint64_t epoch_bumps_ = 0;
  Failure failure_ = Failure::kNone, current_failure_ = Failure::kNone;
  int fail_at_op_ = 0;
};

}  // namespace radix::testing
