// The corpus pipeline (corpus.h) on the demo model: its results are the per-text results, the
// prefix ordering folds more than the file order, an interrupted run resumes to the same file, and
// bad lines are named.
#include "service/corpus.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "service/runtime.h"

namespace radix::service {
namespace {

namespace fs = std::filesystem;

// Rows of one text alone and inside a sorted batch differ by about 1e-7 (docs/numerics.md: a
// different batch is a different trie, so BLAS blocking moves); 1e-5 on unit vectors leaves room
// for other BLAS builds while a wrong row (another text's vector) is off by O(0.1).
constexpr float kTolerance = 1e-5f;

struct Demo {
  std::unique_ptr<Runtime> runtime;
  std::atomic<int64_t> rows{0}, tokens{0};

  explicit Demo(const std::string& head = "") {
    RuntimeOptions o;
    o.model = "demo";
    o.head = head;
    o.threads = 2;
    o.max_batch_tokens = 4096;
    o.radix_threshold = 1.0;  // fold every batch that shares anything
    o.service.tokenization_workers = 2;
    o.on_batch = [this](const BatchReport& r) {
      rows.fetch_add(r.rows);
      tokens.fetch_add(r.tokens);
    };
    runtime = Runtime::build(o);
  }
  Service& core() { return runtime->service(); }
};

class VectorSource : public CorpusSource {
 public:
  explicit VectorSource(std::vector<CorpusItem> items) : items_(std::move(items)) {
    for (size_t i = 0; i < items_.size(); ++i) items_[i].line = i;
  }
  bool read(std::vector<CorpusItem>& out, size_t max) override {
    const size_t before = out.size();
    while (next_ < items_.size() && out.size() - before < max) out.push_back(items_[next_++]);
    return out.size() > before;
  }

 private:
  std::vector<CorpusItem> items_;
  size_t next_ = 0;
};

// Texts under three long instructions, interleaved as a shuffled file would hold them.
std::vector<CorpusItem> instructed_corpus(int n) {
  const std::string instructions[] = {
      "Given a web search query, retrieve relevant passages that answer the query well",
      "Given a question about science, find the paragraph of the textbook that explains it",
      "Represent this sentence for finding duplicate questions on a community forum site"};
  std::vector<CorpusItem> items;
  for (int i = 0; i < n; ++i) {
    CorpusItem it;
    it.text = "item " + std::to_string(i * 7919 % 1000) + " about topic " + std::to_string(i % 5);
    it.instruction = instructions[i % 3];
    items.push_back(it);
  }
  return items;
}

float max_diff(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  float d = 0;
  for (size_t k = 0; k < std::min(a.size(), b.size()); ++k) d = std::max(d, std::fabs(a[k] - b[k]));
  return d;
}

std::string temp_path(const std::string& name) {
  return (fs::temp_directory_path() / ("radix_corpus_test_" + name)).string();
}

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST(Corpus, EmbedEqualsPerTextResultsInInputOrder) {
  Demo demo;
  const auto items = instructed_corpus(23);
  VectorSource source(items);
  CorpusRows rows;
  CorpusOptions o;
  o.batch_tokens = 120;  // several batches per chunk
  o.chunk_items = 8;     // and several chunks
  const CorpusStats stats = run_corpus(demo.core(), source, rows, o);
  EXPECT_EQ(stats.items, 23);
  EXPECT_EQ(stats.chunks, 3);
  EXPECT_GT(stats.batches, 3);
  ASSERT_EQ(rows.rows.size(), items.size());
  for (size_t i = 0; i < items.size(); ++i) {
    EmbedRequest r;
    r.inputs = {Input::of_text(items[i].text)};
    r.instruction = items[i].instruction;
    const EmbedResult alone = demo.core().embed(r);
    EXPECT_LE(max_diff(rows.rows[i], alone.embeddings[0].values), kTolerance) << "item " << i;
  }
}

TEST(Corpus, PrefixOrderComputesFewerRowsThanFileOrder) {
  const auto items = instructed_corpus(60);
  auto rows_of = [&](bool by_prefix, int64_t* tokens) {
    Demo demo;
    VectorSource source(items);
    CorpusRows rows;
    CorpusOptions o;
    o.batch_tokens = 200;
    o.order_by_prefix = by_prefix;
    run_corpus(demo.core(), source, rows, o);
    *tokens = demo.tokens.load();
    return demo.rows.load();
  };
  int64_t file_tokens = 0, sorted_tokens = 0;
  const int64_t file_rows = rows_of(false, &file_tokens);
  const int64_t sorted_rows = rows_of(true, &sorted_tokens);
  EXPECT_EQ(file_tokens, sorted_tokens);  // the same work, batched differently
  // Sorted, a batch holds one instruction's texts, so its ~20 instruction tokens run once per
  // batch instead of once per instruction per batch.
  EXPECT_LT(sorted_rows, file_rows);
  EXPECT_LT(static_cast<double>(sorted_rows), 0.8 * static_cast<double>(file_rows))
      << "file order " << file_rows << " rows, prefix order " << sorted_rows;
}

// A source that fails after `reads` chunks: the process dying mid-run, as far as the output sees.
class FailingSource : public CorpusSource {
 public:
  FailingSource(CorpusSource& inner, int reads) : inner_(inner), left_(reads) {}
  bool read(std::vector<CorpusItem>& out, size_t max) override {
    if (left_-- == 0) throw CorpusError("interrupted");
    return inner_.read(out, max);
  }

 private:
  CorpusSource& inner_;
  int left_;
};

void write_file(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

std::string corpus_jsonl(int n) {
  std::string text;
  for (const CorpusItem& it : instructed_corpus(n)) {
    text += "{\"text\": \"" + it.text + "\", \"instruction\": \"" + *it.instruction + "\"}\n";
  }
  return text;
}

TEST(Corpus, InterruptedRunResumesToTheSameFile) {
  Demo demo;
  const std::string input = temp_path("resume.jsonl");
  write_file(input, corpus_jsonl(30));
  CorpusOptions o;
  o.batch_tokens = 150;
  o.chunk_items = 7;
  for (const char* ext : {".npy", ".jsonl"}) {
    const std::string whole = temp_path(std::string("whole") + ext);
    const std::string resumed = temp_path(std::string("resumed") + ext);
    {
      auto source = open_corpus_file(input, CorpusTask::kEmbed);
      auto out = CorpusOutput::open(whole, CorpusTask::kEmbed, "run", false);
      run_corpus(demo.core(), *source, *out, o);
    }
    EXPECT_FALSE(fs::exists(CorpusOutput::state_path(whole)));
    {
      auto source = open_corpus_file(input, CorpusTask::kEmbed);
      FailingSource failing(*source, 3);  // chunks 1-3 read; 1-2 committed, 3 on the engine
      auto out = CorpusOutput::open(resumed, CorpusTask::kEmbed, "run", true);
      EXPECT_THROW(run_corpus(demo.core(), failing, *out, o), CorpusError);
    }
    ASSERT_TRUE(fs::exists(CorpusOutput::state_path(resumed)));
    {
      // Another run's state is refused, not overwritten.
      EXPECT_THROW(CorpusOutput::open(resumed, CorpusTask::kEmbed, "other run", false),
                   CorpusError);
      auto out = CorpusOutput::open(resumed, CorpusTask::kEmbed, "run", false);
      EXPECT_EQ(out->resumed(), 21);  // three whole chunks of 7
      auto source = open_corpus_file(input, CorpusTask::kEmbed, out->resumed());
      CorpusOptions again = o;
      again.resumed = out->resumed();
      const CorpusStats stats = run_corpus(demo.core(), *source, *out, again);
      EXPECT_EQ(stats.items, 9);
    }
    EXPECT_FALSE(fs::exists(CorpusOutput::state_path(resumed)));
    const std::string a = read_all(whole), b = read_all(resumed);
    if (std::string(ext) == ".npy") {
      // The same chunks make the same batches, so the rows are computed alike; still compared
      // with the tolerance (not bytes), as the rule for floats from BLAS says.
      ASSERT_EQ(a.size(), b.size());
      EXPECT_EQ(a.substr(0, 128), b.substr(0, 128));
      EXPECT_NE(a.find("'shape': (30, "), std::string::npos);
      const auto* x = reinterpret_cast<const float*>(a.data() + 128);
      const auto* y = reinterpret_cast<const float*>(b.data() + 128);
      for (size_t k = 0; k < (a.size() - 128) / 4; ++k) ASSERT_NEAR(x[k], y[k], kTolerance);
    } else {
      // Text of floats: a 1e-7 difference (the engine may merge queued batches differently
      // from run to run) can change a digit, so the lines are compared as numbers.
      std::istringstream la(a), lb(b);
      std::string x, y;
      size_t n = 0;
      while (std::getline(la, x) && std::getline(lb, y)) {
        const auto jx = nlohmann::json::parse(x), jy = nlohmann::json::parse(y);
        ASSERT_EQ(jx["index"], n++);
        ASSERT_EQ(jy["index"], jx["index"]);
        EXPECT_LE(max_diff(jx["embedding"].get<std::vector<float>>(),
                           jy["embedding"].get<std::vector<float>>()),
                  kTolerance);
      }
      EXPECT_EQ(n, 30u);
    }
  }
}

std::string error_of(Demo& demo, const std::string& input, const std::string& text,
                     CorpusTask task = CorpusTask::kEmbed) {
  write_file(input, text);
  try {
    auto source = open_corpus_file(input, task);
    CorpusRows rows;
    CorpusOptions o;
    o.task = task;
    run_corpus(demo.core(), *source, rows, o);
  } catch (const CorpusError& e) {
    return e.what();
  }
  return "";
}

TEST(Corpus, BadLinesAreNamed) {
  Demo demo;
  const std::string jsonl = temp_path("bad.jsonl"), txt = temp_path("bad.txt");
  EXPECT_EQ(error_of(demo, jsonl, "{\"text\": \"a\"}\n\n{\"text\": \"b\"}\n{\"text\": oops}\n"),
            jsonl + " line 4: not valid JSON");
  EXPECT_EQ(error_of(demo, jsonl, "{\"text\": \"a\"}\n{\"txt\": \"b\"}\n"),
            jsonl + " line 2: missing \"text\"");
  EXPECT_EQ(error_of(demo, jsonl, "{\"text\": 5}\n"), jsonl + " line 1: \"text\" must be a string");
  EXPECT_EQ(error_of(demo, txt, "one\n\nthree\n"),
            txt + " line 2: empty line (a .txt corpus holds one text per line)");
  std::string long_text;
  for (int i = 0; i < 5000; ++i) long_text += "word ";
  const std::string e = error_of(demo, txt, "short\nalso short\n" + long_text + "\n");
  EXPECT_EQ(e.rfind(txt + " line 3: ", 0), 0u) << e;
  EXPECT_NE(e.find("more than the maximum input length of 4096"), std::string::npos) << e;
  EXPECT_NE(error_of(demo, temp_path("bad.csv"), "a\n").find("unknown corpus format"),
            std::string::npos);
  EXPECT_NE(error_of(demo, txt, "a\n", CorpusTask::kRerank).find("rerank reads query/document"),
            std::string::npos);
  EXPECT_EQ(error_of(demo, jsonl, "{\"query\": \"q\", \"document\": \"d\"}\n", CorpusTask::kRerank),
            "the model is an embedding model; rerank needs a reranker");
}

TEST(Corpus, RerankPairsEqualPerQueryResults) {
  Demo demo("reranker");
  const std::string input = temp_path("pairs.jsonl");
  const std::vector<std::string> queries = {"what is a trie", "how do fleas live"};
  const std::vector<std::string> docs = {"a prefix tree", "an insect", "a fruit",
                                         "a data structure"};
  std::string text;
  for (size_t d = 0; d < docs.size(); ++d) {
    for (const std::string& q : queries) {
      text += "{\"query\": \"" + q + "\", \"document\": \"" + docs[d] + "\"}\n";
    }
  }
  write_file(input, text);
  const std::string output = temp_path("scores.jsonl");
  {
    auto source = open_corpus_file(input, CorpusTask::kRerank);
    auto out = CorpusOutput::open(output, CorpusTask::kRerank, "r", true);
    CorpusOptions o;
    o.task = CorpusTask::kRerank;
    o.batch_tokens = 100;
    run_corpus(demo.core(), *source, *out, o);
  }
  std::ifstream in(output);
  std::string line;
  size_t i = 0;
  for (size_t d = 0; d < docs.size(); ++d) {
    for (const std::string& q : queries) {
      ASSERT_TRUE(std::getline(in, line));
      const auto j = nlohmann::json::parse(line);
      EXPECT_EQ(j["index"], i++);
      RerankRequest r;
      r.query = q;
      r.documents = {docs[d]};
      const RerankResult alone = demo.core().rerank(r);
      // Logits are O(1) dot products (docs/numerics.md: 1e-4 for logits across batches).
      EXPECT_NEAR(j["logit"].get<float>(), alone.scores[0].logit, 1e-4f) << line;
      EXPECT_NEAR(j["score"].get<float>(), alone.scores[0].score, 1e-5f) << line;
    }
  }
  EXPECT_FALSE(std::getline(in, line));
}

}  // namespace
}  // namespace radix::service
