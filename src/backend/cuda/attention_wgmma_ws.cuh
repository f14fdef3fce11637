// The warp-specialised attention kernel on Hopper (sm_90a), in the structure of FlashAttention-3.
//
// Persistent: one block per SM works through a list of items (128 query rows of one head) with
// three warpgroups:
//  - a producer (one warp active, registers given back with setmaxnreg) that loads each item's Q
//    tile and then every key tile's K and V with TMA into a ring of kWsStages slots, each slot
//    guarded by a "full" mbarrier (the TMA bytes have landed) and an "empty" one (every consumer
//    warp is done reading it); the Q tile has its own pair. The producer runs ahead into the next
//    item while the consumers finish the last one, so loads and the output store of consecutive
//    items overlap;
//  - two consumers of 64 query rows each (registers taken with setmaxnreg) that run S = Q K^T,
//    the mask and online softmax, and O += P V on wgmma, like attention_wgmma.cuh.
// Two overlaps hide the softmax behind tensor-core work. Between the consumers ("ping-pong"):
// they take turns issuing their GEMMs through two named barriers, so one consumer's softmax runs
// while the other's GEMMs occupy the tensor cores. Within a consumer: S of tile j is issued
// together with P V of tile j-1, and the softmax of tile j runs while that P V is still in flight;
// only the rescaling of O waits for it.
//
// Q, K and V tiles are 128B-swizzled as in attention_wgmma.cuh (D / 64 column blocks), which is
// the layout TMA writes with CU_TENSOR_MAP_SWIZZLE_128B and a box of 64 columns. Head dimension
// 256 leaves no room for a separate output staging tile: there each consumer stages its output in
// its own rows of the Q tile and releases the Q tile only after that (kWsStageInQ). The tensor maps
// span the call's rows: rows past the end read as zeros. In the varlen mask a tile can run into
// the next sequence's rows; those keys are masked (probability exactly 0) and those queries are
// never written.
#pragma once

#include <cuda.h>  // CUtensorMap (the type only: nothing here calls the driver)
#include <cuda_bf16.h>

#include <cstdint>

#include "backend/cuda/attention_masks.cuh"
#include "backend/cuda/attention_output.cuh"
#include "backend/cuda/attention_params.cuh"
#include "backend/cuda/attention_pipeline_ptx.cuh"
#include "backend/cuda/attention_softmax.cuh"
#include "backend/cuda/attention_wgmma.cuh"
#include "backend/cuda/attention_wgmma_ptx.cuh"
#include "backend/cuda/kernels/launch.cuh"

namespace radix::cuda::attention_detail {

// TMA descriptors of one call's Q, K and V ([rows, heads, 128] bf16, see attention.cu).
struct AttentionTensorMaps {
  CUtensorMap q;
  CUtensorMap k;
  CUtensorMap v;
};

inline constexpr int kWsConsumers = 2;                       // consumer warpgroups
inline constexpr int kWsBlockM = 64 * kWsConsumers;          // query rows per work item
inline constexpr int kWsThreads = 128 * (1 + kWsConsumers);  // plus the producer warpgroup
inline constexpr int kWsStages = 2;                          // K/V slots in the ring
// 65536 registers / 384 threads = 168 each at launch; the producer needs few, so the consumers
// get 232 (40 * 128 + 232 * 256 = 168 * 384).
inline constexpr int kWsProducerRegs = 40;
inline constexpr int kWsConsumerRegs = 232;
// Named barriers 1 and 2 (0 is __syncthreads): consumer c waits on kWsTurnBarrier + c before
// issuing its GEMMs and then lets the other one go.
inline constexpr int kWsTurnBarrier = 1;
inline constexpr int kWsConsumerThreads = 128 * kWsConsumers;
inline constexpr int kWsConsumerWarps = 4 * kWsConsumers;

template <int kD>
inline constexpr bool kWsStageInQ = kD > 128;

template <int kTileN, int kD>
constexpr int ws_shared_bytes() {
  // Q tile, kWsStages slots of K and of V, the output staging tile (unless staged in Q), the
  // mbarriers, and slack to align to the 1024-byte atoms.
  return ((kWsStageInQ<kD> ? 1 : 2) * kWsBlockM + 2 * kWsStages * kTileN) * kD *
             static_cast<int>(sizeof(__nv_bfloat16)) +
         128 + 1024;
}

// The pipeline's mbarriers, 8 bytes each from `base`.
struct WsBarriers {
  uint32_t base;
  __device__ uint32_t q_full() const { return base; }
  __device__ uint32_t q_empty() const { return base + 8; }
  __device__ uint32_t k_full(int slot) const { return base + 8 * (2 + slot); }
  __device__ uint32_t k_empty(int slot) const { return base + 8 * (2 + kWsStages + slot); }
  __device__ uint32_t v_full(int slot) const { return base + 8 * (2 + 2 * kWsStages + slot); }
  __device__ uint32_t v_empty(int slot) const { return base + 8 * (2 + 3 * kWsStages + slot); }
  // Not a barrier: the item the producer announces with q_full (-1: no more).
  __device__ uint32_t item() const { return base + 8 * (2 + 4 * kWsStages); }
};
static_assert(8 * (3 + 4 * kWsStages) <= 128, "the mbarriers and the item fit the 128 bytes");

// The i-th key tile a block loads goes to slot i % kWsStages; it is that slot's
// (i / kWsStages)-th fill, which completes the full barrier's phase of that parity. The Q tile
// of a block's j-th item likewise completes phase j of q_full.
__device__ __forceinline__ int ws_slot(int i) { return i % kWsStages; }
__device__ __forceinline__ uint32_t ws_parity(int i) {
  return static_cast<uint32_t>(i / kWsStages) & 1u;
}

// The work items of one launch: query tiles of kWsBlockM rows of every (head, sequence).
struct WsWorkList {
  int heads;
  int seqs;     // grid columns: sequences (varlen) or 1 (tree)
  int q_tiles;  // query tiles of the longest column
  int64_t items;
  // Null: block b takes items b, b + gridDim.x, ... Otherwise a zeroed counter from which the
  // producers draw their next item once their first (blockIdx.x) is taken, so that blocks that
  // finish early take more.
  int* next_item;
};

struct WsWork {
  int head, seq, q_tile;
};

// Item w: heads fastest, then sequences, then query tiles from the last to the first (under a
// causal mask the last ones are the longest, so the short ones fill the tail). Items past a
// sequence's end are skipped (the mask's begin() fails).
__device__ __forceinline__ WsWork ws_work(const WsWorkList& list, int64_t w) {
  const int64_t rest = w / list.heads;
  return {static_cast<int>(w % list.heads), static_cast<int>(rest % list.seqs),
          list.q_tiles - 1 - static_cast<int>(rest / list.seqs)};
}

// The producer warp: picks the items, and per item announces it with its Q tile, then loads K
// and V of every key tile the mask yields, in the consumers' order. Lane 0 issues; the whole warp
// walks the mask (the tree mask's ballots need every lane).
template <int kTileN, int kD, class Mask>
__device__ __forceinline__ void ws_produce(const AttentionTensorMaps& maps, Mask& mask,
                                           const WsWorkList& list, int group,
                                           const WsBarriers& bars, int64_t* s_item, uint32_t q_addr,
                                           uint32_t k_addr, uint32_t v_addr, int lane) {
  constexpr uint32_t kBlockBytes = kTileN * 128;  // one 64-column block of a K or V tile
  constexpr int kBlocks = kD / 64;
  auto next_item = [&](int64_t w) -> int64_t {
    if (list.next_item == nullptr) return w + gridDim.x;
    int64_t taken = 0;
    if (lane == 0) taken = atomicAdd(list.next_item, 1);
    return __shfl_sync(0xffffffffu, taken, 0) + gridDim.x;
  };
  int i = 0;  // key tiles loaded so far
  int64_t w = blockIdx.x;
  for (int item = 0;; ++item) {
    WsWork work{};
    while (w < list.items) {
      work = ws_work(list, w);
      if (mask.begin(work.q_tile, work.seq, kWsBlockM)) break;
      w = next_item(w);
    }
    const bool done = w >= list.items;
    if (lane == 0) {
      // The consumers have read the last item and are done with its Q tile.
      ptx::mbarrier_wait(bars.q_empty(), (static_cast<uint32_t>(item) & 1u) ^ 1u);
      *s_item = done ? int64_t{-1} : w;
      if (done) {
        ptx::mbarrier_arrive(bars.q_full());
      } else {
        const int q_row = mask.row_base + mask.q0;
        ptx::mbarrier_arrive_expect_tx(bars.q_full(), kWsBlockM * kD * 2);
#pragma unroll
        for (int b = 0; b < kBlocks; ++b) {
          ptx::tma_load_3d(q_addr + b * kWsBlockM * 128, &maps.q, bars.q_full(), 64 * b, work.head,
                           q_row);
        }
      }
    }
    if (done) return;
    const int kv_head = work.head / group;
    for (int tile = mask.next(); tile >= 0; tile = mask.next(), ++i) {
      if (lane == 0) {
        const int slot = ws_slot(i);
        const uint32_t free_parity = ws_parity(i) ^ 1u;  // the consumers' release of the last fill
        const int row = mask.row_base + (tile >> 1) * kTileN;
        const uint32_t k_dst = k_addr + slot * kBlocks * kBlockBytes;
        ptx::mbarrier_wait(bars.k_empty(slot), free_parity);
        ptx::mbarrier_arrive_expect_tx(bars.k_full(slot), kBlocks * kBlockBytes);
#pragma unroll
        for (int b = 0; b < kBlocks; ++b) {
          ptx::tma_load_3d(k_dst + b * kBlockBytes, &maps.k, bars.k_full(slot), 64 * b, kv_head,
                           row);
        }
        const uint32_t v_dst = v_addr + slot * kBlocks * kBlockBytes;
        ptx::mbarrier_wait(bars.v_empty(slot), free_parity);
        ptx::mbarrier_arrive_expect_tx(bars.v_full(slot), kBlocks * kBlockBytes);
#pragma unroll
        for (int b = 0; b < kBlocks; ++b) {
          ptx::tma_load_3d(v_dst + b * kBlockBytes, &maps.v, bars.v_full(slot), 64 * b, kv_head,
                           row);
        }
      }
      __syncwarp();
    }
    w = next_item(w);
  }
}

// Releases a K or V slot: lane 0 of each consumer warp arrives once the warp is done with it.
__device__ __forceinline__ void ws_release(uint32_t bar, int lane) {
  __syncwarp();
  if (lane == 0) ptx::mbarrier_arrive(bar);
}

template <int kTileN, int kD, class Mask>
__global__ void __launch_bounds__(kWsThreads, 1)
    attention_ws_kernel(const __grid_constant__ AttentionTensorMaps maps, AttentionParams p,
                        Mask mask, WsWorkList list) {
  begin_kernel();
  constexpr int kOutTiles = kD / 8;
  constexpr bool kStageInQ = kWsStageInQ<kD>;
  constexpr uint32_t kSlotBytes = kTileN * kD * 2;    // one K or V tile
  constexpr uint32_t kQBlockBytes = kWsBlockM * 128;  // one 64-column block of the Q tile

  extern __shared__ __align__(1024) unsigned char ws_shared_raw[];
  const uint32_t raw_addr = ptx::shared_address(ws_shared_raw);
  const uint32_t q_addr = (raw_addr + 1023u) & ~1023u;
  const uint32_t out_addr = kStageInQ ? q_addr : q_addr + kWsBlockM * kD * 2;
  const uint32_t k_addr = kStageInQ ? q_addr + kWsBlockM * kD * 2 : out_addr + kWsBlockM * kD * 2;
  const uint32_t v_addr = k_addr + kWsStages * kSlotBytes;
  const WsBarriers bars{v_addr + kWsStages * kSlotBytes};
  auto* s_item = reinterpret_cast<int64_t*>(ws_shared_raw + (bars.item() - raw_addr));

  // Broadcast from lane 0, so that the compiler sees the warp index (and the role branches on it)
  // as uniform across the warp: wgmma issued under a possibly divergent branch gets serialized.
  const int warp = __shfl_sync(0xffffffffu, static_cast<int>(threadIdx.x) / 32, 0);
  const int lane = static_cast<int>(threadIdx.x) % 32;
  if (threadIdx.x == 0) {
    ptx::mbarrier_init(bars.q_full(), 1);  // the producer's arrive, plus the TMA bytes
    // Every consumer thread, each after its own read of the announced item.
    ptx::mbarrier_init(bars.q_empty(), kWsConsumerThreads);
    for (int slot = 0; slot < kWsStages; ++slot) {
      ptx::mbarrier_init(bars.k_full(slot), 1);
      ptx::mbarrier_init(bars.v_full(slot), 1);
      ptx::mbarrier_init(bars.k_empty(slot), kWsConsumerWarps);
      ptx::mbarrier_init(bars.v_empty(slot), kWsConsumerWarps);
    }
    ptx::fence_mbarrier_init();
  }
  __syncthreads();  // the last block-wide barrier: the producer's idle warps leave below

  if (warp < 4) {
    ptx::setmaxnreg_dec<kWsProducerRegs>();
    if (warp == 0)
      ws_produce<kTileN, kD>(maps, mask, list, p.group, bars, s_item, q_addr, k_addr, v_addr, lane);
    return;
  }
  ptx::setmaxnreg_inc<kWsConsumerRegs>();

  const int consumer = warp / 4 - 1;                          // 64 query rows each
  const int warp_row = (warp - 4) * 16;                       // this warp's first row in the Q tile
  const uint32_t q_rows_addr = q_addr + consumer * 64 * 128;  // 8 atoms into each column block
  const int my_turn = kWsTurnBarrier + consumer;
  const int other_turn = kWsTurnBarrier + (consumer ^ 1);
  auto* s_out = reinterpret_cast<__nv_bfloat16*>(ws_shared_raw + (out_addr - raw_addr));

  ScoreTile<kTileN> s;
#pragma unroll
  for (int n = 0; n < kTileN / 8; ++n) s[n][0] = s[n][1] = s[n][2] = s[n][3] = 0.f;
  uint32_t pa[kTileN / 16][4];  // the previous tile's probabilities while its P V runs
  int i = 0;                    // key tiles consumed so far (the producer's count)
  for (int item = 0;; ++item) {
    ptx::mbarrier_wait(bars.q_full(), static_cast<uint32_t>(item) & 1u);
    const int64_t w = *s_item;
    if (w < 0) break;
    const WsWork work = ws_work(list, w);
    mask.begin(work.q_tile, work.seq, kWsBlockM);     // true: the producer took the item
    const int qa = mask.q0 + warp_row + (lane >> 2);  // this thread's two query rows
    const int qb = qa + 8;
    // Consumer 1 has no rows in a sequence's short last tile: it only keeps the slots' counts.
    // When both have rows they take turns. Broadcast: uniform for the compiler, see `warp`.
    const bool busy = __shfl_sync(0xffffffffu, mask.q0 + 64 * consumer < mask.num_rows, 0);
    const bool turns = __shfl_sync(0xffffffffu, mask.q0 + 64 < mask.num_rows, 0);

    float o[kOutTiles][4];
    float row_max[2];
    float row_sum[2];
    start_output(o, row_max, row_sum);
    int tile = mask.next();
    if (tile < 0) {
      // (A busy consumer that stages in Q arrives after its store below.)
      if (!kStageInQ || !busy) ptx::mbarrier_arrive(bars.q_empty());
    } else if (!busy) {
      for (; tile >= 0; tile = mask.next(), ++i) {
        ptx::mbarrier_wait(bars.k_full(ws_slot(i)), ws_parity(i));
        ws_release(bars.k_empty(ws_slot(i)), lane);
        ptx::mbarrier_wait(bars.v_full(ws_slot(i)), ws_parity(i));
        ws_release(bars.v_empty(ws_slot(i)), lane);
      }
      ptx::mbarrier_arrive(bars.q_empty());
    } else {
      // Turns: consumer 0 goes first. Each consumer waits for its turn once per key tile and
      // then hands the turn over, except consumer 1 after its last tile (nobody would take it),
      // so every arrival on a turn barrier is matched by a wait within the item.
      if (turns && consumer == 1) ptx::named_barrier_arrive(kWsTurnBarrier, kWsConsumerThreads);
      int next = mask.next();
      float alpha[2];

      // The item's first key tile: S alone.
      ptx::mbarrier_wait(bars.k_full(ws_slot(i)), ws_parity(i));
      if (turns) ptx::named_barrier_sync(my_turn, kWsConsumerThreads);
      fence_fragment(s);
      ptx::wgmma_fence();
      wgmma_scores<kTileN, kD>(s, q_rows_addr, kQBlockBytes, k_addr + ws_slot(i) * kSlotBytes);
      ptx::wgmma_commit();
      if (turns && (consumer == 0 || next >= 0)) {
        ptx::named_barrier_arrive(other_turn, kWsConsumerThreads);
      }
      ptx::wgmma_wait<0>();
      fence_fragment(s);
      ws_release(bars.k_empty(ws_slot(i)), lane);
      if (!kStageInQ && next < 0) ptx::mbarrier_arrive(bars.q_empty());
      if (Mask::kHasOptions && p.softcap) apply_softcap<kTileN>(s, p);
      if ((tile & 1) == 0) mask.apply(s, (tile >> 1) * kTileN, qa, qb, lane);
      softmax_scores<kTileN>(s, row_max, row_sum, p.scale_log2, alpha);  // O is 0: no rescale
      pack_probabilities<kTileN>(s, pa);
      ++i;

      // Every further key tile: its S issued with P V of the tile before, its softmax under it.
      for (; next >= 0; ++i) {
        tile = next;
        next = mask.next();
        const int slot = ws_slot(i);
        const int prev = ws_slot(i - 1);
        ptx::mbarrier_wait(bars.k_full(slot), ws_parity(i));
        if (turns) ptx::named_barrier_sync(my_turn, kWsConsumerThreads);
        fence_fragment(s);
        ptx::wgmma_fence();
        wgmma_scores<kTileN, kD>(s, q_rows_addr, kQBlockBytes, k_addr + slot * kSlotBytes);
        ptx::wgmma_commit();
        ptx::mbarrier_wait(bars.v_full(prev), ws_parity(i - 1));
        ptx::wgmma_fence();  // ptxas wants one after the wait loop; it does not wait for S
        wgmma_pv<kTileN>(o, pa, v_addr + prev * kSlotBytes);
        ptx::wgmma_commit();
        if (turns && (consumer == 0 || next >= 0)) {
          ptx::named_barrier_arrive(other_turn, kWsConsumerThreads);
        }

        ptx::wgmma_wait<1>();  // S is done; P V may still run
        fence_fragment(s);
        ws_release(bars.k_empty(slot), lane);
        if (!kStageInQ && next < 0) ptx::mbarrier_arrive(bars.q_empty());
        if (Mask::kHasOptions && p.softcap) apply_softcap<kTileN>(s, p);
        if ((tile & 1) == 0) mask.apply(s, (tile >> 1) * kTileN, qa, qb, lane);
        softmax_scores<kTileN>(s, row_max, row_sum, p.scale_log2, alpha);
        ptx::wgmma_wait<0>();  // P V of the previous tile: O and pa are free again
        fence_fragment(o);
        fence_fragment(pa);
        ws_release(bars.v_empty(prev), lane);
        rescale_output(o, alpha);
        pack_probabilities<kTileN>(s, pa);
      }

      // P V of the item's last tile.
      const int last = ws_slot(i - 1);
      ptx::mbarrier_wait(bars.v_full(last), ws_parity(i - 1));
      ptx::wgmma_fence();
      wgmma_pv<kTileN>(o, pa, v_addr + last * kSlotBytes);
      ptx::wgmma_commit();
      ptx::wgmma_wait<0>();
      fence_fragment(o);
      fence_fragment(pa);
      ws_release(bars.v_empty(last), lane);
    }
    if (busy) {
      // Each warp stages its rows in its own rows of the output tile.
      store_output_rows(o, row_sum, s_out, Sw128Layout<kWsBlockM>{}, warp_row, lane, p, work.head,
                        mask.row_base + mask.q0, mask.num_rows - mask.q0);
      if constexpr (kStageInQ) {
        // The staging rows were this consumer's Q rows: order the generic-proxy accesses before
        // the producer's next TMA write into them, then release the Q tile.
        ptx::fence_proxy_async_shared();
        ptx::mbarrier_arrive(bars.q_empty());
      }
    }
  }
}

}  // namespace radix::cuda::attention_detail
