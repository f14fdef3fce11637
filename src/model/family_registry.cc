// The one place that lists the decoder families (one file each in src/model/families/).
#include <stdexcept>

#include "model/family.h"

namespace radix {

extern const Family kQwen3Family;
extern const Family kMistralFamily;
extern const Family kQwen2Family;
extern const Family kLlamaFamily;
extern const Family kGemmaFamily;
extern const Family kGemma2Family;

const std::vector<const Family*>& families() {
  static const std::vector<const Family*> all = {&kQwen3Family, &kMistralFamily, &kQwen2Family,
                                                 &kLlamaFamily, &kGemmaFamily,   &kGemma2Family};
  return all;
}

const Family& family_for_model_type(const std::string& model_type) {
  std::string known;
  for (const Family* f : families()) {
    if (model_type == f->model_type) return *f;
    known += known.empty() ? "" : ", ";
    known += f->model_type;
  }
  throw std::runtime_error("config.json: model_type is \"" + model_type + "\"; radix supports " +
                           known);
}

const Family& family_named(const std::string& name) {
  for (const Family* f : families()) {
    if (name == f->name) return *f;
  }
  throw std::invalid_argument("unknown model family '" + name + "'");
}

}  // namespace radix
