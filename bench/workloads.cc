#include "workloads.h"

#include <algorithm>
#include <map>
#include <stdexcept>
#include <vector>

namespace radix::bench {
namespace {

// splitmix64: a fixed generator so that every machine and compiler builds the same workloads.
class Rng {
 public:
  Rng(uint64_t seed, int32_t vocab_size)
      : state_(seed),
        token_hi_(vocab_size > kTokenLo ? std::min(kTokenHi, vocab_size) : kTokenHi) {}
  uint64_t next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  int32_t uniform(int32_t lo, int32_t hi) {  // [lo, hi)
    return lo + static_cast<int32_t>(next() % static_cast<uint64_t>(hi - lo));
  }
  std::vector<int32_t> tokens(int n) {
    std::vector<int32_t> out(n);
    for (auto& t : out) t = uniform(kTokenLo, token_hi_);
    return out;
  }

 private:
  static constexpr int32_t kTokenLo = 100;
  static constexpr int32_t kTokenHi = 150000;
  uint64_t state_;
  int32_t token_hi_;
};

std::vector<int32_t> concat(std::initializer_list<const std::vector<int32_t>*> parts) {
  std::vector<int32_t> out;
  for (const auto* p : parts) out.insert(out.end(), p->begin(), p->end());
  return out;
}

}  // namespace

RaggedBatch make_syn(int batch, int prefix, int suffix, uint64_t seed, int32_t vocab_size) {
  Rng rng(seed, vocab_size);
  const auto shared = rng.tokens(prefix);
  RaggedBatch out;
  for (int b = 0; b < batch; ++b) {
    const auto tail = rng.tokens(suffix);
    out.add_sequence(concat({&shared, &tail}));
  }
  return out;
}

RaggedBatch make_rerank_like(int groups, int docs, uint64_t seed, int32_t vocab_size) {
  Rng rng(seed, vocab_size);
  const auto system = rng.tokens(48);
  const auto end = rng.tokens(10);
  RaggedBatch out;
  for (int g = 0; g < groups; ++g) {
    const auto query = rng.tokens(rng.uniform(6, 17));
    for (int d = 0; d < docs; ++d) {
      const auto doc = rng.tokens(rng.uniform(40, 121));
      out.add_sequence(concat({&system, &query, &doc, &end}));
    }
  }
  return out;
}

RaggedBatch make_wide(int batch, int length, int prefix, uint64_t seed, int32_t vocab_size) {
  return make_syn(batch, prefix, length - prefix, seed, vocab_size);
}

std::vector<RaggedBatch> make_stream(int requests, int prefix, int suffix, uint64_t seed,
                                     int32_t vocab_size) {
  Rng rng(seed, vocab_size);
  const auto shared = rng.tokens(prefix);
  std::vector<RaggedBatch> out(requests);
  for (RaggedBatch& one : out) {
    const auto own = rng.tokens(suffix);
    one.add_sequence(concat({&shared, &own}));
  }
  return out;
}

Workload parse_workload(const std::string& spec, int32_t vocab_size) {
  const auto colon = spec.find(':');
  const std::string kind = spec.substr(0, colon);
  std::map<std::string, long> args;
  if (colon != std::string::npos) {
    size_t at = colon + 1;
    while (at < spec.size()) {
      const size_t comma = std::min(spec.find(',', at), spec.size());
      const std::string item = spec.substr(at, comma - at);
      const size_t eq = item.find('=');
      if (eq == std::string::npos || eq == 0 || eq + 1 == item.size()) {
        throw std::invalid_argument("workload '" + spec + "': expected KEY=VALUE, got '" + item +
                                    "'");
      }
      try {
        size_t used = 0;
        const long value = std::stol(item.substr(eq + 1), &used);
        if (used != item.size() - eq - 1 || value <= 0) throw std::invalid_argument("");
        args[item.substr(0, eq)] = value;
      } catch (const std::exception&) {
        throw std::invalid_argument("workload '" + spec + "': '" + item +
                                    "' needs a positive integer value");
      }
      at = comma + 1;
    }
  }
  auto take = [&](const char* key, long fallback) {
    auto it = args.find(key);
    const long v = it == args.end() ? fallback : it->second;
    if (it != args.end()) args.erase(it);
    if (v > (1L << 24)) throw std::invalid_argument(std::string("workload: ") + key + " too large");
    return static_cast<int>(v);
  };
  const uint64_t seed = static_cast<uint64_t>(take("seed", 1));
  Workload w;
  if (kind == "syn") {
    const int b = take("B", 32), p = take("P", 2048), s = take("S", 256);
    w.name = "syn:B=" + std::to_string(b) + ",P=" + std::to_string(p) + ",S=" + std::to_string(s);
    w.batch = make_syn(b, p, s, seed, vocab_size);
  } else if (kind == "rerank-like") {
    const int g = take("G", 40), d = take("D", 10);
    w.name = "rerank-like:G=" + std::to_string(g) + ",D=" + std::to_string(d);
    w.batch = make_rerank_like(g, d, seed, vocab_size);
  } else if (kind == "wide") {
    const int b = take("B", 2048), l = take("L", 512), p = take("P", 128);
    if (p > l) throw std::invalid_argument("workload '" + spec + "': P must not exceed L");
    w.name = "wide:B=" + std::to_string(b) + ",L=" + std::to_string(l) + ",P=" + std::to_string(p);
    w.batch = make_wide(b, l, p, seed, vocab_size);
  } else if (kind == "stream") {
    const int p = take("P", 2048), s = take("S", 64), n = take("N", 16);
    w.name =
        "stream:P=" + std::to_string(p) + ",S=" + std::to_string(s) + ",N=" + std::to_string(n);
    w.stream = make_stream(n, p, s, seed, vocab_size);
    for (const RaggedBatch& one : w.stream) {
      w.batch.add_sequence(std::span<const int32_t>(one.ids));
    }
  } else {
    throw std::invalid_argument("unknown workload '" + spec +
                                "' (expected syn:..., rerank-like:..., wide:... or stream:...)");
  }
  if (!args.empty()) {
    throw std::invalid_argument("workload '" + spec + "': unknown key '" + args.begin()->first +
                                "'");
  }
  return w;
}

}  // namespace radix::bench
