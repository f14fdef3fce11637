// Where the shared tokenizer assets are; tests that need them skip, naming the folder, when the
// checkout has no ../shared beside it.
#pragma once

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace radix::testing {

inline std::filesystem::path shared_assets() {
  return std::filesystem::path(RADIX_SOURCE_DIR).parent_path() / "shared" / "assets";
}

inline std::filesystem::path qwen3_folder() { return shared_assets() / "qwen3-embedding-0.6b"; }

inline std::string read_text_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace radix::testing

#define RADIX_SKIP_IF_MISSING(path)                                                       \
  do {                                                                                    \
    if (!std::filesystem::exists(path)) {                                                 \
      GTEST_SKIP() << "missing " << (path).string() << " (../shared/assets not present)"; \
    }                                                                                     \
  } while (0)
