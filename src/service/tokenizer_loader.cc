#include "service/tokenizer_loader.h"

#include <filesystem>
#include <stdexcept>

#include "model/demo_model.h"
#include "model/model.h"

namespace radix {

Tokenizer load_tokenizer(const std::string& source, const ModelInfo* model) {
  if (source == "demo") return Tokenizer::from_json(demo_tokenizer_json());
  if (!source.empty()) {
    if (!std::filesystem::exists(source)) {
      throw std::runtime_error("tokenizer " + source +
                               ": no such file or folder (give a tokenizer.json, a model folder, "
                               "or demo)");
    }
    return Tokenizer::from_path(source);
  }
  if (model == nullptr) throw std::runtime_error("no tokenizer given");
  if (!model->tokenizer_json.empty()) return Tokenizer::from_json(model->tokenizer_json);
  if (!model->tokenizer_path.empty()) return Tokenizer::from_file(model->tokenizer_path);
  if (std::filesystem::is_directory(model->spec)) return Tokenizer::from_directory(model->spec);
  throw std::runtime_error(
      "model " + model->spec +
      " has random weights and no tokenizer; pass --tokenizer (a "
      "tokenizer.json, a model folder, or demo) or use demo or a model folder");
}

}  // namespace radix
