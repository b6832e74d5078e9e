#include "program_executor/web/api_problem.hpp"

#include <utility>

namespace program_executor::web {

ApiProblem::ApiProblem(int status, std::string slug, std::string title, std::string detail,
                       nlohmann::json extra)
    : std::runtime_error(detail),
      status_(status),
      slug_(std::move(slug)),
      title_(std::move(title)),
      detail_(std::move(detail)),
      extra_(std::move(extra)) {}

nlohmann::json ApiProblem::body() const {
  nlohmann::json body = {{"type", "urn:program-executor:problem:" + slug_},
                         {"title", title_},
                         {"status", status_},
                         {"detail", detail_}};
  for (const auto& [key, value] : extra_.items()) body[key] = value;
  return body;
}

ApiProblem problem_for_status(int status, std::string detail) {
  switch (status) {
    case 400: return ApiProblem(400, "invalid-request", "Invalid request", std::move(detail));
    case 401: return ApiProblem(401, "unauthorized", "Unauthorized", std::move(detail));
    case 403: return ApiProblem(403, "forbidden", "Forbidden", std::move(detail));
    case 404: return ApiProblem(404, "not-found", "Not found", std::move(detail));
    case 405: return ApiProblem(405, "method-not-allowed", "Method not allowed", std::move(detail));
    case 409: return ApiProblem(409, "conflict", "Conflict", std::move(detail));
    case 413: return ApiProblem(413, "payload-too-large", "Payload too large", std::move(detail));
    case 415:
      return ApiProblem(415, "unsupported-media-type", "Unsupported media type", std::move(detail));
    case 503: return ApiProblem(503, "unavailable", "Service unavailable", std::move(detail));
    default: return ApiProblem(status, "error", "Error", std::move(detail));
  }
}

ApiProblem invalid_request(std::string detail) { return problem_for_status(400, std::move(detail)); }

}  // namespace program_executor::web
