#include "server/api_error.h"

namespace radix::server {

const char* error_type_name(ErrorType type) {
  switch (type) {
    case ErrorType::kUnhealthy:
      return "Unhealthy";
    case ErrorType::kBackend:
      return "Backend";
    case ErrorType::kOverloaded:
      return "Overloaded";
    case ErrorType::kValidation:
      return "Validation";
    case ErrorType::kTokenizer:
      return "Tokenizer";
    case ErrorType::kEmpty:
      return "Empty";
    case ErrorType::kPayloadLarge:
      return "PayloadTooLarge";
    case ErrorType::kUnauthorized:
      return "Unauthorized";
    case ErrorType::kNotFound:
      return "NotFound";
  }
  return "Backend";
}

int default_status(ErrorType type) {
  switch (type) {
    case ErrorType::kUnhealthy:
      return 503;
    case ErrorType::kBackend:
      return 424;
    case ErrorType::kOverloaded:
      return 429;
    case ErrorType::kValidation:
    case ErrorType::kTokenizer:
      return 422;
    case ErrorType::kEmpty:
      return 400;
    case ErrorType::kPayloadLarge:
      return 413;
    case ErrorType::kUnauthorized:
      return 401;
    case ErrorType::kNotFound:
      return 404;
  }
  return 500;
}

nlohmann::json tei_error_body(const ApiError& error) {
  return {{"error", error.what()}, {"error_type", error_type_name(error.type())}};
}

nlohmann::json openai_error_body(const ApiError& error) {
  // OpenAI's `type` vocabulary: client mistakes are invalid_request_error; the rest name the cause.
  const char* type = "invalid_request_error";
  const char* code = nullptr;
  switch (error.type()) {
    case ErrorType::kOverloaded:
      type = "rate_limit_error";
      code = "rate_limit_exceeded";
      break;
    case ErrorType::kUnauthorized:
      type = "authentication_error";
      code = "invalid_api_key";
      break;
    case ErrorType::kUnhealthy:
      type = "server_error";
      code = "service_unavailable";
      break;
    case ErrorType::kBackend:
      type = "server_error";
      break;
    case ErrorType::kNotFound:
      code = "not_found";
      break;
    default:
      break;
  }
  nlohmann::json body = {{"message", error.what()}, {"type", type}, {"param", nullptr}};
  body["code"] = code ? nlohmann::json(code) : nlohmann::json(nullptr);
  return {{"error", body}};
}

}  // namespace radix::server
