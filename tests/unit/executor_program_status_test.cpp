// How `status` presents error_message, which keeps the last retryable error
// after the step got past it (issue 19, item 8).
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "program_executor/executor/program_status.hpp"

using namespace program_executor;
using nlohmann::json;

namespace {

store::ProgramRow row_with_retry_error() {
  store::ProgramRow row;
  row.run_id = "r";
  row.jobs = {"a", "b"};
  row.error_message = "connection reset by peer";
  return row;
}

}  // namespace

TEST_CASE("a finished program shows its last retry's error as a past retry, not as its error") {
  store::ProgramRow row = row_with_retry_error();
  row.step = 1;
  row.finished_at = "2026-01-01T00:00:00.000Z";
  CHECK_FALSE(executor::current_error(row));
  const std::string text = executor::format_status(row);
  CHECK_THAT(text, !Catch::Contains("error         connection reset"));
  CHECK_THAT(text, Catch::Contains(
                       "past retry    connection reset by peer (overcome; the program finished)"));
  const json j = json::parse(executor::status_json(row));
  CHECK(j["error"].is_null());
  CHECK(j["error_message"] == "connection reset by peer");  // the column, as stored
}

TEST_CASE("a running program shows a retry error as current only while its step is retrying") {
  store::ProgramRow row = row_with_retry_error();
  row.step = 1;
  row.step_retry_count = 0;  // step 1 got past its retries and committed
  CHECK_FALSE(executor::current_error(row));
  CHECK_THAT(
      executor::format_status(row),
      Catch::Contains("past retry    connection reset by peer (overcome; not the current step's)"));

  row.step_retry_count = 2;  // the current step is being retried
  REQUIRE(executor::current_error(row));
  CHECK(*executor::current_error(row) == "connection reset by peer");
  CHECK_THAT(executor::format_status(row),
             Catch::Contains("error         connection reset by peer"));
  CHECK(json::parse(executor::status_json(row))["error"] == "connection reset by peer");
}

TEST_CASE("errored and cancelled programs show why they stopped, and no message shows a dash") {
  store::ProgramRow row = row_with_retry_error();
  row.errored_at = "2026-01-01T00:00:00.000Z";
  row.error_message = "job b failed: disk full";
  CHECK_THAT(executor::format_status(row),
             Catch::Contains("error         job b failed: disk full"));
  CHECK(json::parse(executor::status_json(row))["error"] == "job b failed: disk full");

  row.error_message = executor::cancelled_message;
  CHECK_THAT(executor::format_status(row), Catch::Contains("error         cancelled"));

  store::ProgramRow clean;
  clean.run_id = "c";
  clean.jobs = {"a"};
  CHECK_THAT(executor::format_status(clean), Catch::Contains("error         -"));
  CHECK_THAT(executor::format_status(clean), !Catch::Contains("past retry"));
}

TEST_CASE("a running program shows which host, process and worker holds its step") {
  store::ProgramRow row = row_with_retry_error();
  row.lease_owner = "worker-7:4242:1";
  row.lease_until = "2026-01-01T00:00:30.000Z";
  CHECK_THAT(executor::format_status(row),
             Catch::Contains("claimed by    worker-7:4242:1 (host:pid:worker), until "
                             "2026-01-01T00:00:30.000Z"));
  row.lease_owner.reset();  // waiting in the queue: nobody holds it
  CHECK_THAT(executor::format_status(row), !Catch::Contains("claimed by"));
  row.lease_owner = "worker-7:4242:1";
  row.finished_at = "2026-01-01T00:00:10.000Z";  // an ended program holds no claim worth showing
  CHECK_THAT(executor::format_status(row), !Catch::Contains("claimed by"));
}

TEST_CASE("list shows the worker holding a running program's step, and a dash otherwise") {
  store::ProgramRow running;
  running.run_id = "held";
  running.jobs = {"a", "b"};
  running.updated_at = "2026-01-01T00:00:00.000Z";
  running.lease_owner = "node-1:4242:3";
  store::ProgramRow free = running;
  free.run_id = "free";
  free.lease_owner.reset();
  store::ProgramRow errored = running;  // a dead worker's claim left on an ended row
  errored.run_id = "ended";
  errored.errored_at = "2026-01-01T00:00:01.000Z";
  const std::string text = executor::format_list({running, free, errored});
  const auto line_of = [&](const std::string& run_id) {
    const auto at = text.find("\n" + run_id);
    REQUIRE(at != std::string::npos);
    return text.substr(at + 1, text.find('\n', at + 1) - at - 1);
  };
  CHECK_THAT(text.substr(0, text.find('\n')), Catch::EndsWith("UPDATED (UTC)        WORKER"));
  CHECK_THAT(line_of("held"), Catch::EndsWith("2026-01-01 00:00:00  node-1:4242:3"));
  CHECK_THAT(line_of("free"), Catch::EndsWith("2026-01-01 00:00:00  -"));
  CHECK_THAT(line_of("ended"), Catch::EndsWith("2026-01-01 00:00:00  -"));
}
