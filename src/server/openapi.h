// The OpenAPI 3 description of every route radix serves (GET /openapi.json).
#pragma once

#include <nlohmann/json.hpp>

namespace radix::server {

nlohmann::json openapi_document();

}  // namespace radix::server
