#include "backend/cpu/openblas_threads.h"

#include <cblas.h>  // openblas_set_num_threads, openblas_get_num_threads

#include <mutex>

namespace radix::cpu {
namespace {

std::mutex g_mu;
int g_active = 0;  // guards alive, in every thread
int g_saved = 0;   // the caller's count, while g_active > 0

}  // namespace

OpenblasSingleThreaded::OpenblasSingleThreaded() {
  std::lock_guard<std::mutex> lock(g_mu);
  if (g_active++ == 0) {
    g_saved = openblas_get_num_threads();
    if (g_saved != 1) openblas_set_num_threads(1);
  }
}

OpenblasSingleThreaded::~OpenblasSingleThreaded() {
  std::lock_guard<std::mutex> lock(g_mu);
  if (--g_active == 0 && g_saved != 1) openblas_set_num_threads(g_saved);
}

int openblas_threads() { return openblas_get_num_threads(); }

}  // namespace radix::cpu
