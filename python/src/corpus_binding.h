// Engine.embed_corpus / rerank_corpus: a Python iterable through the core's corpus pipeline
// (service/corpus.h), the same code as `radix embed --input`.
#pragma once

#include <nanobind/nanobind.h>

#include <cstdint>
#include <functional>
#include <utility>

#include "service/service.h"

namespace radix::python {

// `options` holds embed_corpus's keyword arguments (engine.py checks and fills them);
// `totals` gives the engine's running (tokens, rows), for the compression in progress lines.
nanobind::object run_corpus(service::Service& core, nanobind::object items,
                            const nanobind::dict& options,
                            std::function<std::pair<int64_t, int64_t>()> totals);

// Registers the corpus errors (a bad item, an output that belongs to another run) as ValueError.
void bind_corpus(nanobind::module_& m);

}  // namespace radix::python
