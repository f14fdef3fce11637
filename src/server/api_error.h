// API errors as TEI reports them: a status, a body {"error": message, "error_type": kind}; and the
// same error in OpenAI's shape for the /v1 routes.
#pragma once

#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>

namespace radix::server {

// TEI's error kinds (serialised with TEI's spelling) plus the two it leaves to its HTTP framework.
enum class ErrorType {
  kUnhealthy,     // 503: shutting down or not ready
  kBackend,       // 424: the model failed, or cannot serve this route (wrong head)
  kOverloaded,    // 429: no concurrency permit left
  kValidation,    // 422 (400 for a body that is not JSON)
  kTokenizer,     // 422: the tokenizer rejected the input
  kEmpty,         // 400: empty input
  kPayloadLarge,  // 413: body over --payload-limit
  kUnauthorized,  // 401: missing or wrong API key
  kNotFound,      // 404: no such route
};

const char* error_type_name(ErrorType type);
int default_status(ErrorType type);

class ApiError : public std::runtime_error {
 public:
  ApiError(ErrorType type, const std::string& message)
      : ApiError(type, default_status(type), message) {}
  ApiError(ErrorType type, int status, const std::string& message)
      : std::runtime_error(message), type_(type), status_(status) {}
  ErrorType type() const { return type_; }
  int status() const { return status_; }

 private:
  ErrorType type_;
  int status_;
};

// {"error": "...", "error_type": "Validation"}
nlohmann::json tei_error_body(const ApiError& error);
// {"error": {"message": "...", "type": "invalid_request_error", "param": null, "code": ...}}
nlohmann::json openai_error_body(const ApiError& error);

}  // namespace radix::server
