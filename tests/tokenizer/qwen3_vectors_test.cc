// The Qwen3 tokenizer against the 365 expected encodings from Hugging Face `tokenizers`
// (../shared/assets/tokenizer-vectors/qwen3_public.jsonl), through tokenizer.json and through
// vocab.json + merges.txt + tokenizer_config.json.
#include <gtest/gtest.h>
#include <unistd.h>
#include <utf8proc.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "test_assets.h"
#include "tokenizer/tokenizer.h"

namespace radix {
namespace {

namespace fs = std::filesystem;
using testing::qwen3_folder;
using testing::shared_assets;

struct Vector {
  std::string text;
  std::vector<int32_t> ids;
};

std::vector<Vector> load_vectors() {
  std::vector<Vector> out;
  std::ifstream in(shared_assets() / "tokenizer-vectors" / "qwen3_public.jsonl");
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    const auto j = nlohmann::json::parse(line);
    out.push_back({j["text"].get<std::string>(), j["ids"].get<std::vector<int32_t>>()});
  }
  return out;
}

std::string nfc(const std::string& s) {
  utf8proc_uint8_t* out = nullptr;
  const auto n = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(s.data()),
                              static_cast<utf8proc_ssize_t>(s.size()), &out,
                              static_cast<utf8proc_option_t>(UTF8PROC_STABLE | UTF8PROC_COMPOSE));
  std::string r = n >= 0 ? std::string(reinterpret_cast<char*>(out), static_cast<size_t>(n)) : "";
  std::free(out);
  return r;
}

std::string show(const std::string& text) { return nlohmann::json(text).dump(); }

class Qwen3Vectors : public ::testing::Test {
 protected:
  void SetUp() override {
    RADIX_SKIP_IF_MISSING(qwen3_folder() / "tokenizer.json");
    RADIX_SKIP_IF_MISSING(shared_assets() / "tokenizer-vectors" / "qwen3_public.jsonl");
    vectors_ = load_vectors();
    ASSERT_EQ(vectors_.size(), 365u);
  }
  static const Tokenizer& from_json() {
    static const Tokenizer t = Tokenizer::from_file((qwen3_folder() / "tokenizer.json").string());
    return t;
  }
  // A folder with the Qwen3 vocab.json, merges.txt and tokenizer_config.json but no
  // tokenizer.json (links into ../shared, nothing copied).
  static fs::path vocab_folder(const std::string& name) {
    const fs::path dir =
        fs::temp_directory_path() / ("radix_tok_" + name + "_" + std::to_string(::getpid()));
    fs::create_directories(dir);
    for (const char* f : {"vocab.json", "merges.txt"}) {
      fs::remove(dir / f);
      fs::create_symlink(qwen3_folder() / f, dir / f);
    }
    return dir;
  }
  std::vector<Vector> vectors_;
};

TEST_F(Qwen3Vectors, TokenizerJsonWithoutSpecialTokens) {
  const Tokenizer& tok = from_json();
  int failures = 0;
  for (const Vector& v : vectors_) {
    const Encoding e = tok.encode(v.text, false);
    EXPECT_EQ(e.ids, v.ids) << "text " << show(v.text);
    EXPECT_EQ(e.offsets.size(), e.ids.size());
    if (e.ids != v.ids && ++failures > 10) FAIL() << "stopping after 10 mismatches";
  }
}

TEST_F(Qwen3Vectors, TokenizerJsonWithEmbeddingPostProcessor) {
  const Tokenizer& tok = from_json();
  for (const Vector& v : vectors_) {
    std::vector<int32_t> want = v.ids;
    want.push_back(151643);
    EXPECT_EQ(tok.encode(v.text, true).ids, want) << "text " << show(v.text);
  }
}

TEST_F(Qwen3Vectors, EncodeBatchMatchesEncode) {
  const Tokenizer& tok = from_json();
  std::vector<std::string> texts;
  for (const Vector& v : vectors_) texts.push_back(v.text);
  const std::vector<Encoding> batch = tok.encode_batch(texts, true, {}, 3);
  ASSERT_EQ(batch.size(), vectors_.size());
  for (size_t i = 0; i < vectors_.size(); ++i) {
    std::vector<int32_t> want = vectors_[i].ids;
    want.push_back(151643);
    EXPECT_EQ(batch[i].ids, want) << "text " << show(vectors_[i].text);
  }
}

TEST_F(Qwen3Vectors, VocabAndMergesFolderWithoutSpecialTokens) {
  const fs::path dir = vocab_folder("plain");
  fs::copy_file(qwen3_folder() / "tokenizer_config.json", dir / "tokenizer_config.json",
                fs::copy_options::overwrite_existing);
  const Tokenizer tok = Tokenizer::from_directory(dir.string());
  EXPECT_EQ(tok.vocab_size(), from_json().vocab_size());
  for (const Vector& v : vectors_) {
    EXPECT_EQ(tok.encode(v.text, false).ids, v.ids) << "text " << show(v.text);
    // Qwen2's recipe adds no special tokens of its own.
    EXPECT_EQ(tok.encode(v.text, true).ids, v.ids) << "text " << show(v.text);
  }
  fs::remove_all(dir);
}

TEST_F(Qwen3Vectors, VocabAndMergesFolderWithEmbeddingPostProcessor) {
  // The embedding post-processor expressed in tokenizer_config.json: append <|endoftext|>.
  const fs::path dir = vocab_folder("eos");
  auto config =
      nlohmann::json::parse(testing::read_text_file(qwen3_folder() / "tokenizer_config.json"));
  config["add_eos_token"] = true;
  config["eos_token"] = "<|endoftext|>";
  std::ofstream(dir / "tokenizer_config.json") << config.dump();
  const Tokenizer tok = Tokenizer::from_directory(dir.string());
  for (const Vector& v : vectors_) {
    std::vector<int32_t> want = v.ids;
    want.push_back(151643);
    EXPECT_EQ(tok.encode(v.text, true).ids, want) << "text " << show(v.text);
  }
  fs::remove_all(dir);
}

TEST_F(Qwen3Vectors, DecodeRoundTripsEveryVector) {
  const Tokenizer& tok = from_json();
  for (const Vector& v : vectors_) {
    // Byte-level BPE loses nothing but what the NFC normaliser changed.
    EXPECT_EQ(tok.decode(v.ids, false), nfc(v.text)) << "text " << show(v.text);
  }
}

TEST_F(Qwen3Vectors, SpecialTokenIds) {
  const Tokenizer& tok = from_json();
  EXPECT_EQ(tok.vocab_size(), 151669);
  EXPECT_EQ(tok.token_to_id("<|endoftext|>"), 151643);
  EXPECT_EQ(tok.token_to_id("<|im_end|>"), 151645);
  EXPECT_EQ(tok.token_to_id("yes"), 9693);
  EXPECT_EQ(tok.token_to_id("no"), 2152);
  EXPECT_EQ(tok.id_to_token(151667), "<think>");
  EXPECT_EQ(tok.num_special_tokens_to_add(false), 1u);
  EXPECT_EQ(tok.num_special_tokens_to_add(true), 2u);
  const std::vector<int32_t> ids = {151644, 9693, 151645};
  EXPECT_EQ(tok.decode(ids, true), "yes");
  EXPECT_EQ(tok.decode(ids, false), "<|im_start|>yes<|im_end|>");
}

}  // namespace
}  // namespace radix
