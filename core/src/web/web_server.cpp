#include "program_executor/web/web_server.hpp"

#include <chrono>
#include <functional>
#include <optional>
#include <regex>
#include <utility>
#include <vector>

#include <httplib.h>

#include "program_executor/log/logger.hpp"
#include "program_executor/web/api_problem.hpp"
#include "program_executor/web/web_assets.hpp"

namespace program_executor::web {
namespace {

// The console's page runs only its own script, talks only to this server,
// and cannot be framed (clickjacking of the Cancel button).
constexpr const char* console_policy =
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

constexpr const char* problem_type = "application/problem+json";

// How long an idle keep-alive connection keeps its thread.
constexpr time_t keep_alive_seconds = 5;

struct Listen {
  std::string host;
  int port = 0;
};

Listen parse_listen(const std::string& listen) {
  const auto colon = listen.rfind(':');
  if (colon == std::string::npos) throw WebServerError("web.listen '" + listen + "' is not IPV4:PORT");
  return {listen.substr(0, colon), std::stoi(listen.substr(colon + 1))};
}

void send_json(httplib::Response& res, int status, const nlohmann::json& body,
               const char* type = "application/json") {
  res.status = status;
  res.set_content(body.dump(), type);
}

void send_problem(httplib::Response& res, const ApiProblem& problem) {
  send_json(res, problem.status(), problem.body(), problem_type);
  if (problem.status() == 401) res.set_header("WWW-Authenticate", "Bearer");
}

// Who may call a route: anyone, any token, or an operator's.
enum class Access { open, viewer, operator_ };

struct Route {
  std::string method;
  std::regex pattern;
  Access access;
  // The request, the path's captures (run id).
  std::function<ApiResponse(const httplib::Request&, const std::smatch&)> handle;
};

std::map<std::string, std::string> query_of(const httplib::Request& req) {
  std::map<std::string, std::string> query;
  for (const auto& [name, value] : req.params) {
    if (!query.emplace(name, value).second) {
      throw invalid_request("query parameter '" + name + "' is given twice");
    }
  }
  return query;
}

// A body must be JSON when there is one (a form post from another site is
// not, so it cannot forge a request even with a token it does not have).
void require_json(const httplib::Request& req) {
  if (req.body.empty()) return;
  const std::string type = req.get_header_value("Content-Type");
  const auto semicolon = type.find(';');
  std::string media = type.substr(0, semicolon);
  while (!media.empty() && media.back() == ' ') media.pop_back();
  for (char& c : media) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (media != "application/json") {
    throw problem_for_status(415, "the body must be application/json, not '" + type + "'");
  }
}

}  // namespace

WebServer::WebServer(const config::WebSettings& settings, ProgramApi& api, AccessTokens tokens)
    : api_(api), tokens_(std::make_shared<const AccessTokens>(std::move(tokens))) {
  if (!settings.tls_cert_file.empty()) {
    auto server = std::make_unique<httplib::SSLServer>(settings.tls_cert_file.c_str(),
                                                       settings.tls_key_file.c_str());
    if (!server->is_valid()) {
      throw WebServerError("cannot use web.tls.cert_file '" + settings.tls_cert_file +
                           "' with web.tls.key_file '" + settings.tls_key_file +
                           "' (unreadable, not PEM, or a key of another certificate)");
    }
    server_ = std::move(server);
    tls_ = true;
  } else {
    server_ = std::make_unique<httplib::Server>();
  }
  const int threads = settings.threads;
  server_->new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<size_t>(threads)); };
  server_->set_payload_max_length(static_cast<size_t>(settings.max_body_bytes));
  // Answers go out at once: without it each response's last segment waits
  // for the client's delayed ACK (about 40 ms per request on keep-alive).
  server_->set_tcp_nodelay(true);
  server_->set_keep_alive_max_count(10000);
  server_->set_keep_alive_timeout(keep_alive_seconds);
  server_->set_read_timeout(10, 0);
  server_->set_write_timeout(10, 0);
  install_routes();

  const Listen listen = parse_listen(settings.listen);
  if (listen.port == 0) {
    port_ = server_->bind_to_any_port(listen.host);
    if (port_ < 0) throw WebServerError("cannot listen on " + listen.host + " (any port)");
  } else {
    if (!server_->bind_to_port(listen.host, listen.port)) {
      throw WebServerError("cannot listen on " + settings.listen +
                           " (in use, or not an address of this host)");
    }
    port_ = listen.port;
  }
}

WebServer::~WebServer() = default;

void WebServer::run() { server_->listen_after_bind(); }

void WebServer::stop() { server_->stop(); }

void WebServer::set_tokens(AccessTokens tokens) {
  auto fresh = std::make_shared<const AccessTokens>(std::move(tokens));
  std::lock_guard lock(tokens_mutex_);
  tokens_ = std::move(fresh);
}

std::shared_ptr<const AccessTokens> WebServer::tokens() const {
  std::lock_guard lock(tokens_mutex_);
  return tokens_;
}

void WebServer::install_routes() {
  const std::string run_id = "([^/]+)";
  auto routes = std::make_shared<std::vector<Route>>();
  routes->push_back({"GET", std::regex("/api/v1/health"), Access::open,
                     [this](auto&, auto&) { return api_.health(); }});
  routes->push_back({"GET", std::regex("/api/v1/programs"), Access::viewer,
                     [this](auto& req, auto&) { return api_.list(query_of(req)); }});
  routes->push_back({"POST", std::regex("/api/v1/programs"), Access::operator_,
                     [this](auto& req, auto&) { return api_.create(req.body); }});
  routes->push_back({"GET", std::regex("/api/v1/programs/" + run_id), Access::viewer,
                     [this](auto&, auto& match) { return api_.get(match[1].str()); }});
  routes->push_back({"GET", std::regex("/api/v1/programs/" + run_id + "/attempts"), Access::viewer,
                     [this](auto&, auto& match) { return api_.attempts(match[1].str()); }});
  routes->push_back({"POST", std::regex("/api/v1/programs/" + run_id + "/cancel"), Access::operator_,
                     [this](auto&, auto& match) { return api_.cancel(match[1].str()); }});
  routes->push_back({"POST", std::regex("/api/v1/programs/" + run_id + "/resume"), Access::operator_,
                     [this](auto& req, auto& match) { return api_.resume(match[1].str(), req.body); }});
  routes->push_back({"GET", std::regex("/api/v1/jobs"), Access::viewer,
                     [this](auto&, auto&) { return api_.jobs(); }});
  routes->push_back({"GET", std::regex("/api/v1/stats"), Access::viewer,
                     [this](auto&, auto&) { return api_.stats(); }});

  // Files: the OpenAPI document and the console (page, script, style sheet).
  const auto file = [](const std::string& name, bool console) {
    return [name, console](httplib::Response& res) {
      const auto asset = web_asset(name);
      if (!asset) throw problem_for_status(404, "not built into this binary: " + name);
      res.status = 200;
      res.set_content(std::string(asset->content), std::string(asset->content_type).c_str());
      if (console) res.set_header("Content-Security-Policy", console_policy);
    };
  };
  std::vector<std::pair<std::string, std::function<void(httplib::Response&)>>> files = {
      {"/api/v1/openapi.json", file("openapi.json", false)},
      {"/", file("console/index.html", true)},
      {"/assets/app.js", file("console/app.js", true)},
      {"/assets/style.css", file("console/style.css", true)},
  };

  const auto dispatch = [this, routes, files](const httplib::Request& req, httplib::Response& res) {
    const auto started = std::chrono::steady_clock::now();
    const std::string method = req.method == "HEAD" ? "GET" : req.method;
    std::string who = "-";
    res.set_header("X-Content-Type-Options", "nosniff");
    res.set_header("Referrer-Policy", "no-referrer");
    try {
      bool path_known = false;
      std::string allowed;
      for (const auto& [path, serve] : files) {
        if (req.path != path) continue;
        path_known = true;
        if (method == "GET") {
          serve(res);
          return;
        }
        allowed = "GET";
      }
      const Route* route = nullptr;
      std::smatch match;
      for (const Route& candidate : *routes) {
        std::smatch candidate_match;
        if (!std::regex_match(req.path, candidate_match, candidate.pattern)) continue;
        path_known = true;
        allowed += (allowed.empty() ? "" : ", ") + candidate.method;
        if (candidate.method == method && route == nullptr) {
          route = &candidate;
          match = candidate_match;
        }
      }
      if (route == nullptr) {
        if (!path_known) throw problem_for_status(404, "no such route: " + req.path);
        res.set_header("Allow", allowed);
        throw problem_for_status(405, req.method + " is not allowed on " + req.path +
                                          " (allowed: " + allowed + ")");
      }
      res.set_header("Cache-Control", "no-store");
      if (route->access != Access::open) {
        // bearer_token() views into the header: keep the header alive.
        const std::string authorization = req.get_header_value("Authorization");
        const auto token = bearer_token(authorization);
        const auto holder = token ? tokens()->holder_of(*token) : std::nullopt;
        if (!holder) {
          throw problem_for_status(401, token ? "the token is not valid"
                                              : "send a token: Authorization: Bearer <token>");
        }
        who = holder->label;
        if (route->access == Access::operator_ && holder->role != Role::operator_) {
          throw problem_for_status(403, "this needs an operator token; yours is a viewer's");
        }
      }
      if (method == "POST") require_json(req);
      ApiResponse answer = route->handle(req, match);
      for (const auto& [name, value] : answer.headers) res.set_header(name, value);
      send_json(res, answer.status, answer.body);
    } catch (const ApiProblem& problem) {
      send_problem(res, problem);
    } catch (const std::exception& e) {
      log::event(log::Level::error, "http.failed", e.what(),
                 {{"method", req.method}, {"path", req.path}});
      send_problem(res, ApiProblem(500, "internal", "Internal error",
                                   "the request failed; the server's log says why"));
    }
    const double ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();
    // Never the token, nor the query (it is the operator's, but may be long).
    log::event(res.status >= 500 ? log::Level::warn : log::Level::debug, "http.request", "",
               {{"method", req.method}, {"path", req.path}, {"status", res.status},
                {"who", who}, {"ms", ms}});
  };
  for (const char* pattern : {".*"}) {
    server_->Get(pattern, dispatch);
    server_->Post(pattern, dispatch);
    server_->Put(pattern, dispatch);
    server_->Patch(pattern, dispatch);
    server_->Delete(pattern, dispatch);
    server_->Options(pattern, dispatch);
  }
  // What httplib refuses before a handler runs (a body over the limit: 413,
  // a malformed request: 400) is answered as a problem too.
  server_->set_error_handler(httplib::Server::HandlerWithResponse(
      [](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
    const std::string detail = res.status == 413 ? "the body is larger than web.max_body_bytes"
                                                 : "the request could not be read as HTTP";
    log::event(log::Level::debug, "http.request", "",
               {{"method", req.method}, {"path", req.path}, {"status", res.status}});
    const ApiProblem problem = problem_for_status(res.status, detail);
    res.set_content(problem.body().dump(), problem_type);
    return httplib::Server::HandlerResponse::Handled;
  }));
}

}  // namespace program_executor::web
