// A refused API request, as RFC 9457 describes it (application/problem+json).
#pragma once

#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>

namespace program_executor::web {

/// Thrown by the API's handlers; the server answers with problem_json(). The
/// handlers throw before they change anything, so a refused request never
/// leaves a trace in the table or on the broker.
class ApiProblem : public std::runtime_error {
 public:
  /// `slug` names the kind ("not-found"): the type is
  /// "urn:program-executor:problem:<slug>". `extra` members are added to the body.
  ApiProblem(int status, std::string slug, std::string title, std::string detail,
             nlohmann::json extra = nlohmann::json::object());

  int status() const noexcept { return status_; }
  const std::string& slug() const noexcept { return slug_; }
  const std::string& title() const noexcept { return title_; }
  const std::string& detail() const noexcept { return detail_; }
  /// The problem+json body: type, title, status, detail and the extra members.
  nlohmann::json body() const;

 private:
  int status_;
  std::string slug_;
  std::string title_;
  std::string detail_;
  nlohmann::json extra_;
};

/// The problem for a status the HTTP layer decided (404 of an unknown route,
/// 413, 405), with `detail`.
ApiProblem problem_for_status(int status, std::string detail);

/// 400 invalid-request.
ApiProblem invalid_request(std::string detail);

}  // namespace program_executor::web
