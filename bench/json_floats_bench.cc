// Writing an embedding reply: nlohmann::json's doubles (how radix wrote them before) against
// json_floats.h's shortest float32 text, for a batch of embeddings. Prints ms per reply and bytes.
//   build/bench/json_floats_bench [--dim 4096] [--rows 1] [--reps 200]
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "server/json_floats.h"

namespace {

template <typename F>
double ms_per_call(int reps, F&& f) {
  f();  // warm-up
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < reps; ++i) f();
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count() /
         reps;
}

}  // namespace

int main(int argc, char** argv) {
  int dim = 4096, rows = 1, reps = 200;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--dim")) dim = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--rows")) rows = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--reps")) reps = std::atoi(argv[i + 1]);
  }
  // Normalised-embedding-like values: Gaussian, scaled to unit norm.
  std::mt19937 rng(1);
  std::normal_distribution<float> normal(0.0f, 1.0f / std::sqrt(static_cast<float>(dim)));
  std::vector<std::vector<float>> emb(rows, std::vector<float>(dim));
  for (auto& row : emb)
    for (float& v : row) v = normal(rng);
  std::string a, b;
  const double nl = ms_per_call(reps, [&] { a = nlohmann::json(emb).dump(); });
  const double jf = ms_per_call(reps, [&] { b = radix::server::json_float_rows(emb); });
  std::printf(
      "rows %d dim %d: nlohmann doubles %.4f ms %zu bytes; shortest float32 %.4f ms %zu bytes\n",
      rows, dim, nl, a.size(), jf, b.size());
  return 0;
}
