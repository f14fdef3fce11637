// The two masks of the attention kernels, as policies that say which key tiles a query tile
// visits, which of them need no mask, and which (query, key) pairs are visible inside the rest.
// Rows are relative to the policy's row_base; key tiles are kTileN rows from row 0.
//
// With kOptions (a template flag, so that calls without options run exactly the code they ran
// before the options existed), both take an optional sliding window of `window` positions
// (INT_MAX: none): key k is visible to query q only if pos(q) - pos(k) < window as well. Varlen
// rows of a sequence are consecutive positions, so there the row difference is the position
// difference; tree rows are not, so the tree mask reads a positions array (per-tile min/max of it
// decide skipping, as for subtree_end).
#pragma once

#include <cuda_runtime.h>

#include <climits>
#include <cstdint>

namespace radix::cuda::attention_detail {

// Rows per entry of the tree workspace (per-tile min/max of subtree_end); key tiles of the
// kernels are multiples of it.
inline constexpr int kMinmaxTile = 64;

// Per thread, the score fragment of one 16 x kTileN step of a warp (mma.sync m16n8 and wgmma
// m64nN accumulators share it): s[n][e] holds query row (lane / 4) + 8 * (e / 2) of the warp's 16
// and key column n * 8 + (lane % 4) * 2 + e % 2.
template <int kTileN>
using ScoreTile = float[kTileN / 8][4];

__device__ __forceinline__ int score_column(int n, int e, int lane) {
  return n * 8 + (lane & 3) * 2 + (e & 1);
}

// Ragged sequences; each query sees the keys of its own sequence at or before it, or, when not
// causal (bidirectional encoders), every key of its sequence.
template <int kTileN, bool kOptions = false>
struct VarlenCausalMask {
  static constexpr bool kHasOptions = kOptions;  // else: causal, no window
  const int32_t* cu_seqlens;
  int total_rows;
  int window;  // positions; INT_MAX: no window (always so when not causal)
  bool causal;
  // Set by begin() for one block.
  int row_base = 0;   // absolute row of the sequence's first row
  int num_rows = 0;   // rows in the sequence
  int q0 = 0;         // first query row of the tile
  int q_last = 0;     // last query row of the tile
  int next_tile = 0;  // next key tile to visit
  int end_tile = 0;

  // Returns false when the tile holds no query row. cu_seqlens is clamped to [0, total_rows] so
  // that malformed offsets cannot send loads outside the tensors.
  __device__ bool begin(int q_tile, int seq, int block_m) {
    const int b = min(max(cu_seqlens[seq], 0), total_rows);
    const int e = min(max(cu_seqlens[seq + 1], b), total_rows);
    row_base = b;
    num_rows = e - b;
    q0 = q_tile * block_m;
    if (q0 >= num_rows) return false;
    q_last = min(q0 + block_m, num_rows) - 1;
    if constexpr (kOptions) {
      end_tile = ((causal ? q_last + 1 : num_rows) + kTileN - 1) / kTileN;
      // The first query sees keys from q0 - window + 1 on (no overflow: q0 >= 0).
      next_tile = max(q0 - window + 1, 0) / kTileN;
    } else {
      end_tile = (q_last + kTileN) / kTileN;
      next_tile = 0;
    }
    return true;
  }

  // The next key tile as (tile << 1) | fully_visible, or -1 when there is none.
  __device__ int next() {
    if (next_tile >= end_tile) return -1;
    const int j = next_tile++;
    // Below the diagonal and, for the last query, within the window: every query sees it.
    // Bidirectional: every tile that ends inside the sequence.
    bool full = (j + 1) * kTileN - 1 <= q0;
    if constexpr (kOptions) {
      full = causal ? full && q_last - j * kTileN < window : (j + 1) * kTileN <= num_rows;
    }
    return (j << 1) | static_cast<int>(full);
  }

  __device__ void apply(ScoreTile<kTileN>& s, int kv0, int qa, int qb, int lane) const {
#pragma unroll
    for (int n = 0; n < kTileN / 8; ++n) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int key = kv0 + score_column(n, e, lane);
        const int query = e < 2 ? qa : qb;
        if constexpr (kOptions) {
          if ((causal && key > query) || key >= num_rows || query - key >= window) {
            s[n][e] = -INFINITY;
          }
        } else {
          if (key > query || key >= num_rows) s[n][e] = -INFINITY;
        }
      }
    }
  }
};

// Compact rows of a fold plan in DFS pre-order: key k is visible to query q iff
// k <= q < subtree_end[k] (and positions[q] - positions[k] < window). tile_minmax[j] = (min, max)
// of subtree_end over rows [j * kMinmaxTile, (j + 1) * kMinmaxTile), pos_minmax[j] the same of
// positions (read only with a window).
template <int kTileN, bool kOptions = false>
struct TreeMask {
  static constexpr bool kHasOptions = kOptions;  // else: no window
  static_assert(kTileN % kMinmaxTile == 0, "key tiles must cover whole workspace tiles");
  static constexpr int kSub = kTileN / kMinmaxTile;

  const int32_t* subtree_end;
  const int2* tile_minmax;
  int num_rows;
  int window;                // INT_MAX: no window (positions and pos_minmax unused)
  const int32_t* positions;  // [num_rows], with a window
  const int2* pos_minmax;
  int row_base = 0;
  int q_pos_lo = 0;  // min and max position of the query tile's rows, with a window
  int q_pos_hi = 0;
  int q0 = 0;
  int q_end = 0;
  int end_tile = 0;
  // Visibility bits of 32 key tiles from word_base, identical in every lane (ballots).
  int word_base = 0;
  unsigned visible_bits = 0;
  unsigned full_bits = 0;

  __device__ bool begin(int q_tile, int /*seq*/, int block_m) {
    q0 = q_tile * block_m;
    if (q0 >= num_rows) return false;
    q_end = min(q0 + block_m, num_rows);
    end_tile = (q_end + kTileN - 1) / kTileN;  // keys after the last query are never visible
    if (kOptions && window != INT_MAX) {
      // q0 is a multiple of kMinmaxTile (query tiles are 64 or 128 rows).
      q_pos_lo = INT_MAX;
      q_pos_hi = INT_MIN;
      for (int t = q0 / kMinmaxTile; t * kMinmaxTile < q_end; ++t) {
        const int2 mm = pos_minmax[t];
        q_pos_lo = min(q_pos_lo, mm.x);
        q_pos_hi = max(q_pos_hi, mm.y);
      }
    }
    word_base = -32;
    visible_bits = 0;
    full_bits = 0;
    return true;
  }

  // A tile is skipped iff max(subtree_end) <= q0 (its subtrees end before the first query) or,
  // with a window, every (query, key) pair is out of it; it is fully visible iff it lies at or
  // before q0, min(subtree_end) >= q_end and every pair is within the window.
  __device__ void load_word() {
    const int tile = word_base + static_cast<int>(threadIdx.x & 31);
    bool visible = false;
    bool full = false;
    if (tile < end_tile) {
      const int minmax_tiles = (num_rows + kMinmaxTile - 1) / kMinmaxTile;
      int lo = INT_MAX;
      int hi = INT_MIN;
#pragma unroll
      for (int i = 0; i < kSub; ++i) {
        const int t = tile * kSub + i;
        if (t < minmax_tiles) {
          const int2 mm = tile_minmax[t];
          lo = min(lo, mm.x);
          hi = max(hi, mm.y);
        }
      }
      visible = hi > q0;
      full = visible && (tile + 1) * kTileN - 1 <= q0 && lo >= q_end;
      if (kOptions && window != INT_MAX && visible) {
        int pos_lo = INT_MAX;
        int pos_hi = INT_MIN;
#pragma unroll
        for (int i = 0; i < kSub; ++i) {
          const int t = tile * kSub + i;
          if (t < minmax_tiles) {
            const int2 mm = pos_minmax[t];
            pos_lo = min(pos_lo, mm.x);
            pos_hi = max(pos_hi, mm.y);
          }
        }
        // Differences as int64: positions are arbitrary int32 values here.
        visible = int64_t{q_pos_lo} - pos_hi < window;
        full = full && visible && int64_t{q_pos_hi} - pos_lo < window;
      }
    }
    visible_bits = __ballot_sync(0xffffffffu, visible);
    full_bits = __ballot_sync(0xffffffffu, full);
  }

  __device__ int next() {
    while (visible_bits == 0) {
      word_base += 32;
      if (word_base >= end_tile) return -1;
      load_word();
    }
    const int bit = __ffs(static_cast<int>(visible_bits)) - 1;
    visible_bits &= visible_bits - 1;
    return ((word_base + bit) << 1) | static_cast<int>((full_bits >> bit) & 1u);
  }

  // True when every (query, key) pair of the query tile and the key tile at kv0 is inside the
  // window (from the per-tile position ranges; the same in every lane), so that apply() need not
  // read positions: with a window longer than every branch, partial tiles cost what they cost
  // without one.
  __device__ bool tile_within_window(int kv0) const {
    const int minmax_tiles = (num_rows + kMinmaxTile - 1) / kMinmaxTile;
    int pos_lo = INT_MAX;
#pragma unroll
    for (int i = 0; i < kSub; ++i) {
      const int t = kv0 / kMinmaxTile + i;
      if (t < minmax_tiles) pos_lo = min(pos_lo, __ldg(&pos_minmax[t].x));
    }
    return int64_t{q_pos_hi} - pos_lo < window;
  }

  __device__ void apply(ScoreTile<kTileN>& s, int kv0, int qa, int qb, int lane) const {
#pragma unroll
    for (int n = 0; n < kTileN / 8; ++n) {
#pragma unroll
      for (int c = 0; c < 2; ++c) {
        const int key = kv0 + score_column(n, c, lane);
        const int end = key < num_rows ? __ldg(subtree_end + key) : INT_MIN;
        if (!(key <= qa && qa < end)) s[n][c] = -INFINITY;
        if (!(key <= qb && qb < end)) s[n][c + 2] = -INFINITY;
      }
    }
    if (kOptions && window != INT_MAX && !tile_within_window(kv0)) {
      // Rows past the end are never visible (subtree_end above), so their position is moot.
      const int64_t pa = qa < num_rows ? __ldg(positions + qa) : 0;
      const int64_t pb = qb < num_rows ? __ldg(positions + qb) : 0;
#pragma unroll
      for (int n = 0; n < kTileN / 8; ++n) {
#pragma unroll
        for (int c = 0; c < 2; ++c) {
          const int key = kv0 + score_column(n, c, lane);
          const int64_t pk = key < num_rows ? __ldg(positions + key) : 0;
          if (pa - pk >= window) s[n][c] = -INFINITY;
          if (pb - pk >= window) s[n][c + 2] = -INFINITY;
        }
      }
    }
  }
};

}  // namespace radix::cuda::attention_detail
