#include "core/fold_plan.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <stdexcept>
#include <string>

namespace radix {
namespace {

struct SeqView {
  const int32_t* ids;
  const int32_t* positions;
  int32_t length;
};

// Index of the first (id, position) pair at or after `from` where a and b differ, or the shorter
// length. The blocked OR-reduction lets the compiler vectorise the common case of long equal runs.
int32_t mismatch_from(const SeqView& a, const SeqView& b, int32_t from) {
  const int32_t n = std::min(a.length, b.length);
  int32_t i = from;
  constexpr int32_t kBlock = 16;
  for (; i + kBlock <= n; i += kBlock) {
    uint32_t diff = 0;
    for (int32_t j = 0; j < kBlock; ++j) {
      diff |= static_cast<uint32_t>(a.ids[i + j] ^ b.ids[i + j]) |
              static_cast<uint32_t>(a.positions[i + j] ^ b.positions[i + j]);
    }
    if (diff != 0) break;
  }
  for (; i < n; ++i) {
    if (a.ids[i] != b.ids[i] || a.positions[i] != b.positions[i]) return i;
  }
  return n;
}

// Orders (id, position) pairs; sequences compare lexicographically, a proper prefix first.
bool less_at(const SeqView& a, const SeqView& b, int32_t m) {
  if (m == a.length || m == b.length) return a.length < b.length;
  if (a.ids[m] != b.ids[m]) return a.ids[m] < b.ids[m];
  return a.positions[m] < b.positions[m];
}

void validate(std::span<const int32_t> ids, std::span<const int32_t> positions,
              std::span<const int32_t> cu_seqlens, const FoldOptions& options) {
  using std::to_string;
  if (ids.size() != positions.size()) {
    throw std::invalid_argument("fold plan: ids has " + to_string(ids.size()) +
                                " entries but positions has " + to_string(positions.size()));
  }
  if (ids.size() > static_cast<size_t>(std::numeric_limits<int32_t>::max() / 2)) {
    throw std::invalid_argument("fold plan: batch of " + to_string(ids.size()) +
                                " tokens exceeds the 32-bit row index range");
  }
  if (cu_seqlens.empty()) {
    throw std::invalid_argument("fold plan: cu_seqlens is empty (it needs at least [0])");
  }
  if (cu_seqlens.front() != 0) {
    throw std::invalid_argument("fold plan: cu_seqlens must start at 0, got " +
                                to_string(cu_seqlens.front()));
  }
  for (size_t s = 0; s + 1 < cu_seqlens.size(); ++s) {
    if (cu_seqlens[s + 1] < cu_seqlens[s]) {
      throw std::invalid_argument("fold plan: cu_seqlens decreases at index " + to_string(s + 1) +
                                  " (" + to_string(cu_seqlens[s]) + " -> " +
                                  to_string(cu_seqlens[s + 1]) + ")");
    }
    if (cu_seqlens[s + 1] == cu_seqlens[s]) {
      throw std::invalid_argument("fold plan: sequence " + to_string(s) + " is empty");
    }
  }
  if (static_cast<size_t>(cu_seqlens.back()) != ids.size()) {
    throw std::invalid_argument("fold plan: cu_seqlens ends at " + to_string(cu_seqlens.back()) +
                                " but the batch has " + to_string(ids.size()) + " tokens");
  }
  // A vectorisable OR of sign bits first; the slow loop only runs to name the offender.
  int32_t any_negative = 0;
  for (size_t i = 0; i < ids.size(); ++i) any_negative |= ids[i] | positions[i];
  for (size_t i = 0; any_negative < 0 && i < ids.size(); ++i) {
    if (ids[i] < 0) {
      throw std::invalid_argument("fold plan: negative token id " + to_string(ids[i]) +
                                  " at flat index " + to_string(i));
    }
    if (positions[i] < 0) {
      throw std::invalid_argument("fold plan: negative position " + to_string(positions[i]) +
                                  " at flat index " + to_string(i));
    }
  }
  if (options.pad_to_multiple < 1) {
    throw std::invalid_argument("fold plan: pad_to_multiple must be >= 1, got " +
                                to_string(options.pad_to_multiple));
  }
  if (std::isnan(options.threshold)) {
    throw std::invalid_argument("fold plan: threshold is NaN");
  }
}

// Lays the batch out one row per flat token (the plan used when folding does not pay).
void build_identity(std::span<const int32_t> ids, std::span<const int32_t> positions,
                    std::span<const int32_t> cu_seqlens, FoldPlan& plan) {
  std::copy(ids.begin(), ids.end(), plan.ids.begin());
  std::copy(positions.begin(), positions.end(), plan.positions.begin());
  const int32_t num_seqs = static_cast<int32_t>(cu_seqlens.size()) - 1;
  for (int32_t s = 0; s < num_seqs; ++s) {
    const int32_t begin = cu_seqlens[s];
    const int32_t end = cu_seqlens[s + 1];
    for (int32_t i = begin; i < end; ++i) {
      plan.parent[i] = i == begin ? -1 : i - 1;
      plan.subtree_end[i] = end;
      plan.gather[i] = i;
      plan.scatter[i] = i;
    }
    plan.last_rows[s] = end - 1;
  }
}

}  // namespace

void build_fold_plan(std::span<const int32_t> ids, std::span<const int32_t> positions,
                     std::span<const int32_t> cu_seqlens, const FoldOptions& options,
                     FoldPlan& plan) {
  validate(ids, positions, cu_seqlens, options);
  const int32_t num_tokens = static_cast<int32_t>(ids.size());
  const int32_t num_seqs = static_cast<int32_t>(cu_seqlens.size()) - 1;

  auto view = [&](int32_t s) {
    const int32_t begin = cu_seqlens[s];
    return SeqView{ids.data() + begin, positions.data() + begin, cu_seqlens[s + 1] - begin};
  };

  // Longest common prefix of every sequence with sequence 0. Any two sequences agree up to the
  // smaller of their two values and, when the values differ, first differ exactly there; so most
  // comparisons below cost O(1) instead of a scan over a long shared prefix.
  std::vector<int32_t> lcp_ref(num_seqs);
  for (int32_t s = 0; s < num_seqs; ++s) lcp_ref[s] = mismatch_from(view(0), view(s), 0);

  auto lcp = [&](int32_t a, int32_t b) {
    const int32_t m = std::min(lcp_ref[a], lcp_ref[b]);
    return lcp_ref[a] == lcp_ref[b] ? mismatch_from(view(a), view(b), m) : m;
  };

  std::vector<int32_t> order(num_seqs);
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](int32_t a, int32_t b) {
    const SeqView va = view(a);
    const SeqView vb = view(b);
    const int32_t m = lcp(a, b);
    if (m == va.length && m == vb.length) return a < b;  // equal: keep input order
    return less_at(va, vb, m);
  });

  // How much each sequence shares with its predecessor in sorted order; the rest are new rows. This
  // gives the unique count, and so the threshold decision, before anything is laid out.
  std::vector<int32_t> shared(num_seqs, 0);
  int64_t unique = 0;
  for (int32_t i = 0; i < num_seqs; ++i) {
    if (i > 0) shared[i] = lcp(order[i - 1], order[i]);
    unique += view(order[i]).length - shared[i];
  }
  plan.num_tokens = num_tokens;
  plan.num_unique = unique;
  plan.folded = options.threshold >= 1.0 || plan.compression_ratio() < options.threshold;

  const int32_t rows = plan.folded ? static_cast<int32_t>(unique) : num_tokens;
  const int32_t pad = options.pad_to_multiple;
  const int32_t padded = (rows + pad - 1) / pad * pad;
  plan.num_rows = padded;
  for (auto* v : {&plan.ids, &plan.positions, &plan.parent, &plan.subtree_end, &plan.gather}) {
    v->resize(padded);
  }
  plan.scatter.resize(num_tokens);
  plan.last_rows.resize(num_seqs);

  if (plan.folded) {
    // Insert in sorted order. `path` holds the rows of the previous sequence by depth; a sequence
    // reuses its first `shared` rows, and rows of the previous path below that depth can gain no
    // more descendants (every later sequence shares even less with it), so their subtrees close.
    std::vector<int32_t> path;
    int32_t next_row = 0;
    for (int32_t i = 0; i < num_seqs; ++i) {
      const int32_t s = order[i];
      const SeqView v = view(s);
      const int32_t begin = cu_seqlens[s];
      while (static_cast<int32_t>(path.size()) > shared[i]) {
        plan.subtree_end[path.back()] = next_row;
        path.pop_back();
      }
      std::copy(path.begin(), path.end(), plan.scatter.begin() + begin);
      for (int32_t d = shared[i]; d < v.length; ++d) {
        const int32_t row = next_row++;
        plan.ids[row] = v.ids[d];
        plan.positions[row] = v.positions[d];
        plan.parent[row] = d == 0 ? -1 : path.back();
        plan.scatter[begin + d] = row;
        path.push_back(row);
      }
      plan.last_rows[s] = path[v.length - 1];
    }
    for (const int32_t row : path) plan.subtree_end[row] = next_row;

    // First flat occurrence: walk sequences in input order from their last token back; once a row
    // is already claimed, so are all its ancestors (the claiming sequence contains them).
    std::fill(plan.gather.begin(), plan.gather.begin() + rows, -1);
    for (int32_t s = 0; s < num_seqs; ++s) {
      for (int32_t i = cu_seqlens[s + 1] - 1; i >= cu_seqlens[s]; --i) {
        int32_t& first = plan.gather[plan.scatter[i]];
        if (first >= 0) break;
        first = i;
      }
    }
  } else {
    build_identity(ids, positions, cu_seqlens, plan);
  }

  for (int32_t row = rows; row < padded; ++row) {
    plan.ids[row] = 0;
    plan.positions[row] = 0;
    plan.parent[row] = -1;
    plan.subtree_end[row] = row + 1;
    plan.gather[row] = -1;
  }
}

FoldPlan build_fold_plan(std::span<const int32_t> ids, std::span<const int32_t> positions,
                         std::span<const int32_t> cu_seqlens, const FoldOptions& options) {
  FoldPlan plan;
  build_fold_plan(ids, positions, cu_seqlens, options, plan);
  return plan;
}

}  // namespace radix

namespace radix {

FoldPlan build_grouped_fold_plan(std::span<const int32_t> ids, std::span<const int32_t> positions,
                                 std::span<const int32_t> cu_seqlens,
                                 std::span<const int32_t> group_starts,
                                 const FoldOptions& options) {
  using std::to_string;
  const auto num_seqs = static_cast<int32_t>(cu_seqlens.size()) - 1;
  if (group_starts.empty() || group_starts.front() != 0 || group_starts.back() != num_seqs) {
    throw std::invalid_argument("grouped fold plan: group_starts must run from 0 to " +
                                to_string(num_seqs) + " sequences");
  }
  for (size_t g = 0; g + 1 < group_starts.size(); ++g) {
    if (group_starts[g] > group_starts[g + 1]) {
      throw std::invalid_argument("grouped fold plan: group_starts decreases at " +
                                  to_string(g + 1));
    }
  }
  // The whole batch is validated by the identity plan, which is also the answer when the
  // threshold says no.
  FoldOptions identity = options;
  identity.threshold = 0.0;
  FoldPlan whole = build_fold_plan(ids, positions, cu_seqlens, identity);

  FoldOptions fold_group;  // pad_to_multiple 1, always folded; padding comes at the end
  FoldPlan plan, part;
  plan.num_tokens = static_cast<int64_t>(ids.size());
  plan.scatter.resize(ids.size());
  for (size_t g = 0; g + 1 < group_starts.size(); ++g) {
    const int32_t s0 = group_starts[g], s1 = group_starts[g + 1];
    if (s0 == s1) continue;
    const int32_t t0 = cu_seqlens[s0], t1 = cu_seqlens[s1];
    std::vector<int32_t> cu(cu_seqlens.begin() + s0, cu_seqlens.begin() + s1 + 1);
    for (int32_t& c : cu) c -= t0;
    build_fold_plan(ids.subspan(t0, t1 - t0), positions.subspan(t0, t1 - t0), cu, fold_group, part);
    const auto row0 = static_cast<int32_t>(plan.ids.size());
    for (int32_t r = 0; r < part.num_rows; ++r) {
      plan.ids.push_back(part.ids[r]);
      plan.positions.push_back(part.positions[r]);
      plan.parent.push_back(part.parent[r] < 0 ? -1 : part.parent[r] + row0);
      plan.subtree_end.push_back(part.subtree_end[r] + row0);
      plan.gather.push_back(part.gather[r] < 0 ? -1 : part.gather[r] + t0);
    }
    for (int32_t t = t0; t < t1; ++t) plan.scatter[t] = part.scatter[t - t0] + row0;
    for (const int32_t r : part.last_rows) plan.last_rows.push_back(r + row0);
    plan.num_unique += part.num_unique;
  }
  plan.folded = options.threshold >= 1.0 || plan.compression_ratio() < options.threshold;
  if (!plan.folded) {
    whole.num_unique = plan.num_unique;
    return whole;
  }
  const auto rows = static_cast<int32_t>(plan.ids.size());
  const int32_t pad = options.pad_to_multiple;
  const int32_t padded = (rows + pad - 1) / pad * pad;
  for (int32_t r = rows; r < padded; ++r) {
    plan.ids.push_back(0);
    plan.positions.push_back(0);
    plan.parent.push_back(-1);
    plan.subtree_end.push_back(r + 1);
    plan.gather.push_back(-1);
  }
  plan.num_rows = padded;
  return plan;
}

}  // namespace radix
