// `radix tokenize` (ids of a text, or of every line of a JSONL file) and `radix bench tokenize`
// (single-thread encode throughput over the dl19 passages).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "commands.h"
#include "service/tokenizer_loader.h"
#include "tokenizer/tokenizer.h"

namespace radix::cli {
namespace {

using nlohmann::json;

struct TokenizeArgs {
  std::string tokenizer;
  bool add_special_tokens = false;
  bool offsets = false;
  bool decode = false;
  bool skip_special_tokens = false;
  std::string jsonl;
  std::string text;
  bool has_text = false;
  int threads = 1;
};

json encoding_json(const Encoding& e, bool offsets) {
  json j;
  j["ids"] = e.ids;
  if (offsets) {
    json o = json::array();
    for (const auto& [b, end] : e.offsets) o.push_back({b, end});
    j["offsets"] = std::move(o);
  }
  return j;
}

// One {"text": ...} (optionally "text_pair") per line in, one {"ids": [...]} per line out, in
// order. Lines are encoded in blocks so a large file streams through with bounded memory.
void tokenize_jsonl(const Tokenizer& tok, const TokenizeArgs& args) {
  std::ifstream file;
  std::istream* in = &std::cin;
  if (args.jsonl != "-") {
    file.open(args.jsonl, std::ios::binary);
    if (!file) throw std::runtime_error("cannot open " + args.jsonl);
    in = &file;
  }
  constexpr size_t kBlock = 4096;
  std::vector<std::string> texts, pairs;
  std::vector<bool> has_pair;
  bool any_pair = false;
  size_t line_no = 0;
  std::string line;
  auto flush = [&] {
    if (texts.empty()) return;
    std::vector<Encoding> out;
    if (any_pair) {
      for (size_t i = 0; i < texts.size(); ++i) {
        out.push_back(has_pair[i] ? tok.encode_pair(texts[i], pairs[i], args.add_special_tokens)
                                  : tok.encode(texts[i], args.add_special_tokens));
      }
    } else {
      out = tok.encode_batch(texts, args.add_special_tokens, {}, args.threads);
    }
    std::string buf;
    for (const Encoding& e : out) {
      buf += encoding_json(e, args.offsets).dump();
      buf += '\n';
    }
    std::fwrite(buf.data(), 1, buf.size(), stdout);
    texts.clear();
    pairs.clear();
    has_pair.clear();
    any_pair = false;
  };
  while (std::getline(*in, line)) {
    ++line_no;
    json j;
    try {
      j = json::parse(line);
    } catch (const json::parse_error& e) {
      throw std::runtime_error("line " + std::to_string(line_no) + ": not valid JSON: " + e.what());
    }
    if (!j.is_object() || !j.contains("text") || !j["text"].is_string()) {
      throw std::runtime_error("line " + std::to_string(line_no) +
                               ": expected an object with a string \"text\"");
    }
    texts.push_back(j["text"].get<std::string>());
    if (j.contains("text_pair")) {
      if (!j["text_pair"].is_string()) {
        throw std::runtime_error("line " + std::to_string(line_no) +
                                 ": \"text_pair\" must be a string");
      }
      any_pair = true;
      pairs.push_back(j["text_pair"].get<std::string>());
      has_pair.push_back(true);
    } else {
      pairs.emplace_back();
      has_pair.push_back(false);
    }
    if (texts.size() == kBlock) flush();
  }
  flush();
  std::fflush(stdout);
}

// One {"ids": [...]} per line in, one {"text": ...} per line out.
void decode_jsonl(const Tokenizer& tok, const TokenizeArgs& args) {
  std::ifstream file;
  std::istream* in = &std::cin;
  if (args.jsonl != "-") {
    file.open(args.jsonl, std::ios::binary);
    if (!file) throw std::runtime_error("cannot open " + args.jsonl);
    in = &file;
  }
  size_t line_no = 0;
  std::string line;
  while (std::getline(*in, line)) {
    ++line_no;
    const std::string where = "line " + std::to_string(line_no) + ": ";
    std::vector<int32_t> ids;
    try {
      ids = json::parse(line).at("ids").get<std::vector<int32_t>>();
    } catch (const json::exception& e) {
      throw std::runtime_error(where + "expected {\"ids\": [...]}: " + e.what());
    }
    const std::string out = json{{"text", tok.decode(ids, args.skip_special_tokens)}}.dump();
    std::printf("%s\n", out.c_str());
  }
  std::fflush(stdout);
}

void run_tokenize(const TokenizeArgs& args) {
  const Tokenizer tok = load_tokenizer(args.tokenizer);
  if (args.decode) {
    if (args.jsonl.empty()) throw std::runtime_error("--decode reads ids from --jsonl");
    decode_jsonl(tok, args);
    return;
  }
  if (!args.jsonl.empty()) {
    if (args.has_text) throw std::runtime_error("give either TEXT or --jsonl, not both");
    tokenize_jsonl(tok, args);
    return;
  }
  std::string text = args.text;
  if (!args.has_text) text.assign(std::istreambuf_iterator<char>(std::cin), {});
  const Encoding e = tok.encode(text, args.add_special_tokens);
  const std::string out = args.offsets ? encoding_json(e, true).dump() : json(e.ids).dump();
  std::printf("%s\n", out.c_str());
}

// The shared assets beside the repository (`<repo>/../shared/assets`), found from the binary's
// own place (build/radix or build/<preset>/radix) rather than the working directory, so the
// defaults work from anywhere; RADIX_ASSETS names another folder.
std::string default_asset(const std::string& relative) {
  if (const char* env = std::getenv("RADIX_ASSETS"); env && *env) {
    return (std::filesystem::path(env) / relative).string();
  }
  std::error_code ec;
  const std::filesystem::path exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    for (std::filesystem::path dir = exe.parent_path(); dir.has_relative_path();
         dir = dir.parent_path()) {
      const std::filesystem::path candidate = dir.parent_path() / "shared" / "assets" / relative;
      if (std::filesystem::exists(candidate, ec)) return candidate.string();
    }
  }
  return "../shared/assets/" + relative;  // as before: relative to the working directory
}

struct BenchArgs {
  std::string tokenizer = default_asset("qwen3-embedding-0.6b");
  std::string passages = default_asset("msmarco/dl19_bm25_top100.json");
  int repetitions = 5;
  int threads = 1;
  bool json_out = false;
};

void run_bench_tokenize(const BenchArgs& args) {
  std::vector<std::string> texts;
  {
    std::ifstream in(args.passages, std::ios::binary);
    if (!in) throw std::runtime_error("cannot open " + args.passages);
    const json doc = json::parse(in);
    for (const json& q : doc) {
      for (const json& hit : q.at("hits")) texts.push_back(hit.at("content").get<std::string>());
    }
  }
  size_t bytes = 0;
  for (const auto& t : texts) bytes += t.size();

  const auto t_load0 = std::chrono::steady_clock::now();
  const Tokenizer tok = load_tokenizer(args.tokenizer);
  const double load_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t_load0).count();

  // Pass 0 is the cold one (empty word cache, first touch of the tables); the median is over the
  // passes after it.
  size_t tokens = 0;
  std::vector<double> seconds;
  for (int rep = 0; rep <= args.repetitions; ++rep) {
    size_t n = 0;
    const auto t0 = std::chrono::steady_clock::now();
    if (args.threads == 1) {
      for (const auto& t : texts) n += tok.encode(t, false).ids.size();
    } else {
      for (const auto& e : tok.encode_batch(texts, false, {}, args.threads)) n += e.ids.size();
    }
    seconds.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    tokens = n;
  }
  const double cold = seconds[0];
  std::vector<double> warm(seconds.begin() + 1, seconds.end());
  std::sort(warm.begin(), warm.end());
  const double median = warm.empty() ? cold : warm[warm.size() / 2];
  const double mb = static_cast<double>(bytes) / 1e6;
  if (args.json_out) {
    std::printf(
        "{\"bench\": \"tokenize\", \"passages\": %zu, \"bytes\": %zu, \"tokens\": %zu, "
        "\"threads\": %d, \"load_s\": %.3f, \"cold_mb_per_s\": %.2f, \"median_s\": %.4f, "
        "\"mb_per_s\": %.2f, \"tokens_per_s\": %.0f, \"repetitions\": %d}\n",
        texts.size(), bytes, tokens, args.threads, load_s, mb / cold, median, mb / median,
        static_cast<double>(tokens) / median, args.repetitions);
  } else {
    std::printf("passages %zu, %.2f MB, %zu tokens, %d thread(s), load %.3f s\n", texts.size(), mb,
                tokens, args.threads, load_s);
    std::printf(
        "cold pass: %.2f MB/s; median of %d warm passes: %.4f s = %.2f MB/s, %.0f tokens/s\n",
        mb / cold, args.repetitions, median, mb / median, static_cast<double>(tokens) / median);
  }
}

}  // namespace

void add_tokenize(CLI::App& app) {
  auto args = std::make_shared<TokenizeArgs>();
  CLI::App* cmd = app.add_subcommand(
      "tokenize",
      "Print the token ids of TEXT (or stdin), or of every {\"text\": ...} line of a "
      "JSONL file, as JSON");
  cmd->add_option("--tokenizer", args->tokenizer,
                  "tokenizer.json, a model folder, or demo (the demo model's)")
      ->required();
  cmd->add_flag("--add-special-tokens", args->add_special_tokens,
                "Apply the post-processor (e.g. append <|endoftext|>)");
  cmd->add_option(
      "--jsonl", args->jsonl,
      "Read lines {\"text\": ...} (\"-\" = stdin); write one {\"ids\": [...]} per line");
  cmd->add_flag("--offsets", args->offsets, "Also print byte offsets of each token");
  cmd->add_flag("--decode", args->decode,
                "The other way: read lines {\"ids\": [...]} from --jsonl, write {\"text\": ...}");
  cmd->add_flag("--skip-special-tokens", args->skip_special_tokens,
                "With --decode: leave special tokens out");
  cmd->add_option("--threads", args->threads, "Threads for --jsonl (0 = all cores)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("text", args->text, "Text to tokenize (default: read stdin)");
  cmd->callback([args, cmd] {
    args->has_text = cmd->count("text") > 0;
    run_tokenize(*args);
  });
}

void add_bench_tokenize(CLI::App& bench) {
  auto args = std::make_shared<BenchArgs>();
  CLI::App* cmd = bench.add_subcommand(
      "tokenize", "Encode the dl19 passages; print MB/s (one thread unless --threads)");
  cmd->add_option("--tokenizer", args->tokenizer, "tokenizer.json, a model folder, or demo");
  cmd->add_option("--passages", args->passages, "dl19_bm25_top100.json");
  cmd->add_option("--repetitions", args->repetitions, "Timed passes after the cold one")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--threads", args->threads, "1 = encode() in a loop; more = encode_batch")
      ->check(CLI::PositiveNumber);
  cmd->add_flag("--json", args->json_out, "One JSON object");
  cmd->callback([args] { run_bench_tokenize(*args); });
}

}  // namespace radix::cli
