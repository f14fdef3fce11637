// The OpenAPI 3 description of every route radix serves (GET /openapi.json), built for the
// running server: its batch limit, vocabulary, dimensions, prompt names and head are the bounds
// the request parsers (requests.h) and the service enforce, so a body the document allows is a
// body the server accepts (tests/python/test_server_openapi.py checks that with schemathesis).
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "server/inference_service.h"
#include "server/requests.h"

namespace radix::server {

nlohmann::json openapi_document(const ModelCard& card, const RequestLimits& limits,
                                const std::string& served_model_name);

}  // namespace radix::server
