#include "model/rerank_template.h"

#include <cctype>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>

#include "model/prompts.h"

namespace radix {
namespace {

using Slot = RerankTemplate::Slot;

Slot slot_named(std::string_view name) {
  if (name == "query") return Slot::kQuery;
  if (name == "document") return Slot::kDocument;
  if (name == "instruction") return Slot::kInstruction;
  return Slot::kNone;
}

// Splits a segment at its placeholders; counts each slot in `seen`.
RerankTemplate::Segment parse_segment(const std::string& text, int (&seen)[4],
                                      const std::string& origin) {
  RerankTemplate::Segment out;
  std::string literal;
  size_t i = 0;
  while (i < text.size()) {
    if (text[i] == '{') {
      size_t j = i + 1;
      while (j < text.size() &&
             (std::islower(static_cast<unsigned char>(text[j])) || text[j] == '_')) {
        ++j;
      }
      if (j < text.size() && text[j] == '}' && j > i + 1) {
        const std::string name = text.substr(i + 1, j - i - 1);
        const Slot slot = slot_named(name);
        if (slot == Slot::kNone) {
          throw std::invalid_argument(origin + ": unknown placeholder {" + name +
                                      "} (known: {query}, {document}, {instruction})");
        }
        if (!literal.empty()) out.push_back({Slot::kNone, std::move(literal)});
        literal.clear();
        out.push_back({slot, {}});
        ++seen[static_cast<int>(slot)];
        i = j + 1;
        continue;
      }
    }
    literal += text[i++];
  }
  if (!literal.empty()) out.push_back({Slot::kNone, std::move(literal)});
  return out;
}

}  // namespace

RerankTemplate::RerankTemplate(std::vector<std::string> segments, std::string default_instruction,
                               std::string origin)
    : default_instruction_(std::move(default_instruction)), origin_(std::move(origin)) {
  if (segments.empty()) throw std::invalid_argument(origin_ + ": the template has no segments");
  int seen[4] = {0, 0, 0, 0};
  for (const std::string& s : segments) {
    if (s.empty()) throw std::invalid_argument(origin_ + ": a segment is empty");
    const int documents = seen[static_cast<int>(Slot::kDocument)];
    segments_.push_back(parse_segment(s, seen, origin_));
    if (seen[static_cast<int>(Slot::kDocument)] > documents)
      document_segment_ = segments_.size() - 1;
  }
  for (const auto& [slot, name] :
       {std::pair{Slot::kQuery, "{query}"}, std::pair{Slot::kDocument, "{document}"}}) {
    if (seen[static_cast<int>(slot)] != 1) {
      throw std::invalid_argument(origin_ + ": " + name + " must appear exactly once, found " +
                                  std::to_string(seen[static_cast<int>(slot)]));
    }
  }
  const int instructions = seen[static_cast<int>(Slot::kInstruction)];
  if (instructions > 1) {
    throw std::invalid_argument(origin_ + ": {instruction} appears more than once");
  }
  takes_instruction_ = instructions == 1;
  if (takes_instruction_ && default_instruction_.empty()) {
    throw std::invalid_argument(origin_ +
                                ": the template has {instruction} but no "
                                "\"default_instruction\"");
  }
  if (!takes_instruction_ && !default_instruction_.empty()) {
    throw std::invalid_argument(origin_ +
                                ": \"default_instruction\" is given but the template "
                                "has no {instruction}");
  }
}

bool RerankTemplate::fixed(size_t segment) const {
  for (const Piece& p : segments_.at(segment)) {
    if (p.slot != Slot::kNone) return false;
  }
  return true;
}

std::string RerankTemplate::fill(size_t segment, std::string_view instruction,
                                 std::string_view query, std::string_view document) const {
  std::string out;
  for (const Piece& p : segments_.at(segment)) {
    switch (p.slot) {
      case Slot::kNone:
        out += p.text;
        break;
      case Slot::kQuery:
        out += query;
        break;
      case Slot::kDocument:
        out += document;
        break;
      case Slot::kInstruction:
        out += instruction;
        break;
    }
  }
  return out;
}

RerankTemplate qwen3_rerank_template() {
  return RerankTemplate({std::string(kRerankPrefix),
                         "<Instruct>: {instruction}\n<Query>: {query}\n<Document>: {document}",
                         std::string(kRerankSuffix)},
                        std::string(kDefaultRerankInstruction), "qwen3-reranker (built in)");
}

RerankTemplate parse_rerank_template(std::string_view json_text, const std::string& origin) {
  const nlohmann::json j = nlohmann::json::parse(json_text, nullptr, false);
  if (j.is_discarded()) throw std::invalid_argument(origin + ": not valid JSON");
  if (!j.is_object()) {
    throw std::invalid_argument(origin + ": expected a JSON object with \"segments\"");
  }
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (it.key() != "segments" && it.key() != "default_instruction" && it.key() != "comment") {
      throw std::invalid_argument(origin + ": unknown key \"" + it.key() +
                                  "\" (known: segments, default_instruction, comment)");
    }
  }
  if (!j.contains("segments") || !j["segments"].is_array()) {
    throw std::invalid_argument(origin + ": \"segments\" must be a list of strings");
  }
  std::vector<std::string> segments;
  for (const auto& s : j["segments"]) {
    if (!s.is_string()) {
      throw std::invalid_argument(origin + ": \"segments\" must be a list of strings");
    }
    segments.push_back(s.get<std::string>());
  }
  std::string instruction;
  if (j.contains("default_instruction")) {
    if (!j["default_instruction"].is_string()) {
      throw std::invalid_argument(origin + ": \"default_instruction\" must be a string");
    }
    instruction = j["default_instruction"].get<std::string>();
  }
  return RerankTemplate(std::move(segments), std::move(instruction), origin);
}

RerankTemplate load_rerank_template(const std::string& file_or_json) {
  const size_t first = file_or_json.find_first_not_of(" \t\r\n");
  if (first != std::string::npos && file_or_json[first] == '{') {
    return parse_rerank_template(file_or_json, "--rerank-template");
  }
  std::ifstream in(file_or_json);
  if (!in) {
    throw std::invalid_argument("--rerank-template: cannot open '" + file_or_json +
                                "' (give a JSON file or inline JSON starting with '{')");
  }
  std::stringstream text;
  text << in.rdbuf();
  try {
    return parse_rerank_template(text.str(), file_or_json);
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument(std::string("--rerank-template: ") + e.what());
  }
}

}  // namespace radix
