#include "api_run.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <fstream>
#include <iostream>
#include <mutex>
#include <random>
#include <thread>

#include <fmt/format.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include "amqp_link.hpp"
#include "bench_sql.hpp"
#include "program_executor/amqp/connection.hpp"
#include "report.hpp"

namespace program_executor::bench {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr const char* host = "127.0.0.1";
constexpr const char* create_body = R"({"jobs":["demo.noop"]})";

double seconds_between(Clock::time_point from, Clock::time_point to) {
  return std::chrono::duration<double>(to - from).count();
}

// A port nobody listens on now: bound to port 0, read back, closed. serve
// binds it a moment later; another process taking it meanwhile makes serve
// fail to start, which the bench reports.
int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw BenchError("cannot create a socket to find a free port");
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  socklen_t length = sizeof(address);
  const bool bound = ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0 &&
                     ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0;
  ::close(fd);
  if (!bound) throw BenchError("cannot find a free port on 127.0.0.1");
  return ntohs(address.sin_port);
}

std::string random_token() {
  std::random_device device;
  std::string token;
  for (int i = 0; i < 32; ++i) token += "0123456789abcdef"[device() % 16];
  return token;
}

std::filesystem::path write_token(const std::filesystem::path& path, const std::string& token) {
  {
    std::ofstream out(path);
    out << "# Written by pe-bench for one API run.\n" << token << "\n";
    if (!out) throw BenchError("cannot write " + path.string());
  }
  ::chmod(path.c_str(), 0600);
  return path;
}

// One keep-alive connection to serve, with a token.
std::unique_ptr<httplib::Client> client_of(int port, const std::string& token) {
  auto client = std::make_unique<httplib::Client>(host, port);
  client->set_keep_alive(true);
  // A request goes out in two writes (headers, body): without TCP_NODELAY the
  // second waits for the ACK of the first, which the server delays ~40 ms.
  client->set_tcp_nodelay(true);
  client->set_bearer_token_auth(token);
  client->set_connection_timeout(5, 0);
  client->set_read_timeout(120, 0);  // a listing that scans a big table
  client->set_write_timeout(10, 0);
  return client;
}

std::string describe(const httplib::Result& result) {
  if (!result) return "no answer (" + httplib::to_string(result.error()) + ")";
  std::string body = result->body.substr(0, 300);
  return fmt::format("HTTP {}: {}", result->status, body);
}

class Serve {
 public:
  Serve(const DaemonPlan& plan, const std::filesystem::path& config, const std::string& name)
      : process_(std::vector<std::string>{plan.daemon, "serve", "-c", config.string()},
                 plan.work_dir / (name + "-serve.log")) {}

  Process& process() { return process_; }

  [[noreturn]] void fail(const std::string& what) {
    throw BenchError("api: " + what + "\n  last lines of " + process_.log().string() + ":\n" +
                     tail(process_.log(), 15));
  }

  void require_running() {
    if (!process_.running()) fail("serve (pid " + std::to_string(process_.pid()) + ") exited");
  }

  // Until GET /api/v1/health answers 200: plugins loaded, database reached, listening.
  void wait_ready(int port) {
    httplib::Client client(host, port);
    client.set_connection_timeout(1, 0);
    const auto spawned = Clock::now();
    while (true) {
      if (auto result = client.Get("/api/v1/health"); result && result->status == 200) return;
      require_running();
      if (Clock::now() - spawned > 60s) fail("serve did not answer /api/v1/health within 60 s");
      std::this_thread::sleep_for(20ms);
    }
  }

 private:
  Process process_;
};

// GET `target` once; its answer, which must be 200 JSON.
nlohmann::json get_json(Serve& serve, httplib::Client& client, const std::string& target, double* ms = nullptr) {
  const auto begin = Clock::now();
  httplib::Result result = client.Get(target);
  if (ms != nullptr) *ms = seconds_between(begin, Clock::now()) * 1e3;
  if (!result || result->status != 200) serve.fail("GET " + target + ": " + describe(result));
  try {
    return nlohmann::json::parse(result->body);
  } catch (const nlohmann::json::parse_error& e) {
    serve.fail("GET " + target + ": the answer is not JSON: " + e.what());
  }
}

ApiQueryTiming time_query(Serve& serve, httplib::Client& client, const ApiSpec& spec, const std::string& label,
                          const std::string& target) {
  ApiQueryTiming timing;
  timing.label = label;
  timing.target = target;
  std::cerr << fmt::format("pe-bench:   GET {} ...", target) << std::flush;
  const auto started = Clock::now();
  for (int i = 0; i < spec.warm_up + spec.samples; ++i) {
    double ms = 0;
    const nlohmann::json page = get_json(serve, client, target, &ms);
    timing.programs = page.at("programs").size();
    if (i >= spec.warm_up) timing.ms.push_back(ms);
    // A slow query (a filter no index serves) gets fewer samples, not hours.
    if (seconds_between(started, Clock::now()) > spec.query_budget_seconds && !timing.ms.empty()) break;
  }
  std::cerr << fmt::format(" p50 {:.2f} ms, p99 {:.2f} ms ({} samples)\n", percentile(timing.ms, 50),
                           percentile(timing.ms, 99), timing.ms.size());
  return timing;
}

void measure_listing(Serve& serve, int port, const std::string& token, const ApiSpec& spec, long long max_id,
                     ApiRunResult& result) {
  auto client = client_of(port, token);
  const std::string list = "/api/v1/programs?limit=50";
  // The cursor of the 10th page, followed from the first as a client pages.
  std::string cursor;
  {
    std::string target = list;
    for (int page = 1; page < 10; ++page) {
      const nlohmann::json answer = get_json(serve, *client, target);
      if (!answer.at("nextCursor").is_string()) serve.fail("GET " + target + ": no nextCursor before page 10");
      cursor = answer.at("nextCursor").get<std::string>();
      target = list + "&cursor=" + cursor;
    }
  }
  const std::string job = BenchTable::mixed_job(7);
  const std::vector<std::pair<std::string, std::string>> queries = {
      {"no filter", list},
      {"state=running (0.5 %)", list + "&state=running"},
      {"state=errored (2 %)", list + "&state=errored"},
      {"state=cancelled (0.5 %)", list + "&state=cancelled"},
      {"job=" + job + " (5 %)", list + "&job=" + job},
      {"10th page (nextCursor)", list + "&cursor=" + cursor},
      {"cursor at mid-table", list + "&cursor=" + std::to_string(std::max<long long>(2, max_id / 2))},
      {"job=" + BenchTable::rare_job() + " (0.01 %)", list + "&job=" + BenchTable::rare_job()},
  };
  result.list_load_before = load_average();
  for (const auto& [label, target] : queries) result.queries.push_back(time_query(serve, *client, spec, label, target));
  // serve caches /stats for 2 s: the first call counts the whole table.
  get_json(serve, *client, "/api/v1/stats", &result.stats_cold_ms);
  get_json(serve, *client, "/api/v1/stats", &result.stats_warm_ms);
  result.list_load_after = load_average();
  std::cerr << fmt::format("pe-bench:   GET /api/v1/stats: {:.1f} ms cold, {:.2f} ms cached\n", result.stats_cold_ms,
                           result.stats_warm_ms);
}

void measure_creating(Serve& serve, int port, const std::string& token, const ApiSpec& spec,
                      ApiRunResult& result) {
  struct Client {
    std::vector<double> ms;
    long long created = 0;
  };
  std::vector<Client> clients(static_cast<std::size_t>(spec.clients));
  std::atomic<bool> failed{false};
  std::mutex failure_mutex;
  std::string failure;
  const double cpu_before = cpu_seconds(serve.process().pid());
  result.create_load_before = load_average();
  const auto started = Clock::now();
  const auto deadline =
      started + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(spec.seconds));
  std::vector<std::thread> threads;
  for (auto& mine : clients) {
    threads.emplace_back([&, &mine = mine] {
      try {
        auto client = client_of(port, token);
        while (!failed && Clock::now() < deadline) {
          const auto begin = Clock::now();
          httplib::Result answer = client->Post("/api/v1/programs", create_body, "application/json");
          const double ms = seconds_between(begin, Clock::now()) * 1e3;
          if (!answer || answer->status != 201) {
            std::lock_guard lock(failure_mutex);
            if (failure.empty()) failure = "POST /api/v1/programs: " + describe(answer);
            failed = true;
            return;
          }
          mine.ms.push_back(ms);
          ++mine.created;
        }
      } catch (const std::exception& e) {
        std::lock_guard lock(failure_mutex);
        if (failure.empty()) failure = std::string("a creating client failed: ") + e.what();
        failed = true;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  result.create_seconds = seconds_between(started, Clock::now());
  result.create_cpu_seconds = cpu_seconds(serve.process().pid()) - cpu_before;
  result.create_load_after = load_average();
  if (failed) serve.fail(failure);
  for (const auto& client : clients) {
    result.created += client.created;
    result.create_ms.insert(result.create_ms.end(), client.ms.begin(), client.ms.end());
  }
}

}  // namespace

ApiRunResult run_api(const DaemonPlan& plan, const ApiSpec& spec) {
  ApiRunResult result;
  result.clients = spec.clients;
  result.web_threads = std::max(8, spec.clients);
  result.samples = spec.samples;
  result.warm_up = spec.warm_up;
  result.query_budget_seconds = spec.query_budget_seconds;

  const std::string table_name = unique_name();
  std::string queue = table_name;
  std::replace(queue.begin(), queue.end(), '_', '-');
  const amqp::ConnectionSettings broker = amqp::parse_url(plan.amqp_url, {}, 0);

  BenchTable table(plan.backend, plan.connection, table_name, 1);
  table.create();
  if (spec.rows > 0) {
    const auto started = Clock::now();
    std::cerr << "pe-bench: filling " << table_name << " with " << spec.rows
              << " programs (97 % finished, 2 % errored, 0.5 % cancelled, 0.5 % running)..." << std::flush;
    table.fill_mixed(spec.rows);
    result.fill_seconds = seconds_between(started, Clock::now());
    std::cerr << fmt::format(" {:.1f} s\n", result.fill_seconds);
  }
  result.rows = spec.rows;

  // The topology serve publishes to, declared as a daemon would; nothing
  // consumes it, and it is deleted with everything in it at the end.
  const amqp::QueueTopology topology(queue, true, !plan.amqp_urls.empty());
  {
    amqp::Connection control(broker, "pe-bench control");
    control.declare(topology);
  }
  QueueCleanup queues(broker, topology);

  const std::string operator_token = random_token();
  const std::string viewer_token = random_token();
  const auto config = write_config(plan, queue, table_name, 1);
  const int port = free_port();
  {
    std::ofstream out(config, std::ios::app);
    out << "web:\n"
        << "  listen: " << yaml_text(fmt::format("{}:{}", host, port)) << "\n"
        << "  operator_token_file: "
        << yaml_text(write_token(plan.work_dir / (queue + "-operator.tokens"), operator_token).string()) << "\n"
        << "  viewer_token_file: "
        << yaml_text(write_token(plan.work_dir / (queue + "-viewer.tokens"), viewer_token).string()) << "\n"
        << "  threads: " << result.web_threads << "\n";
    if (!out) throw BenchError("cannot write " + config.string());
  }

  Serve serve(plan, config, queue);
  serve.wait_ready(port);

  if (spec.rows > 0) {
    std::cerr << "pe-bench: api, listing on " << spec.rows << " rows, one keep-alive client...\n";
    measure_listing(serve, port, viewer_token, spec, table.max_id(), result);
  }

  result.rows_before_create = table.rows_after(0);
  const std::int64_t last_id = table.max_id();
  std::cerr << fmt::format("pe-bench: api, creating for {:.1f} s, {} keep-alive clients, no daemon consuming...\n",
                           spec.seconds, spec.clients);
  measure_creating(serve, port, operator_token, spec, result);
  std::cerr << fmt::format("pe-bench:   {:.0f} programs/s\n", result.creates_per_second());

  // Every 201 is a row and a confirmed message waiting in the queue.
  const long long rows_created = table.rows_after(last_id);
  const std::uint32_t messages = AmqpLink(broker).inspect(queue).messages;
  if (rows_created != result.created || messages != static_cast<std::uint32_t>(result.created)) {
    serve.fail(fmt::format("{} programs created (201), but {} new rows and {} messages in {}", result.created,
                           rows_created, messages, queue));
  }

  serve.require_running();
  result.peak_rss_kb = peak_rss_kb(serve.process().pid());
  const int status = serve.process().terminate(30s);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::cerr << "pe-bench: warning: serve pid " << serve.process().pid() << " ended with wait status " << status
              << " after SIGTERM\n"
              << tail(serve.process().log(), 10);
  }
  return result;
}

}  // namespace program_executor::bench
