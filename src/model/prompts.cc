#include "model/prompts.h"

namespace radix {

std::string format_rerank_prompt(std::string_view instruction, std::string_view query,
                                 std::string_view document) {
  std::string out(kRerankPrefix);
  out += "<Instruct>: ";
  out += instruction;
  out += "\n<Query>: ";
  out += query;
  out += "\n<Document>: ";
  out += document;
  out += kRerankSuffix;
  return out;
}

std::string format_embedding_query(std::string_view instruction, std::string_view query) {
  std::string out = "Instruct: ";
  out += instruction;
  out += "\nQuery:";
  out += query;
  return out;
}

}  // namespace radix
