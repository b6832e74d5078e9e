// `explain`: the timeline of a program's attempts and the one line saying why
// it is in its state (executor/attempt_timeline.hpp), from rows as the store
// returns them.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "program_executor/executor/attempt_timeline.hpp"

using namespace program_executor;
using nlohmann::json;

namespace {

store::AttemptRecord attempt(int step, const std::string& job, int number, const std::string& outcome,
                             const std::string& started, const std::string& ended, long long ms,
                             std::optional<std::string> error = std::nullopt) {
  store::AttemptRecord record;
  record.run_id = "r1";
  record.step = step;
  record.job = job;
  record.attempt = number;
  record.worker = "host-a:4242:0";
  record.started_at = started;
  record.ended_at = ended;
  record.duration_ms = ms;
  record.outcome = outcome;
  record.error = std::move(error);
  return record;
}

store::ProgramRow program(int step) {
  store::ProgramRow row;
  row.run_id = "r1";
  row.jobs = {"fetch", "charge", "mail"};
  row.step = step;
  row.created_at = "2026-12-07T10:00:00.000Z";
  return row;
}

// Retried, yielded, crashed once, then errored: the transcript of issue 13.
std::vector<store::AttemptRecord> eventful() {
  return {attempt(0, "fetch", 1, "retry", "2026-12-07T10:00:00.000Z", "2026-12-07T10:00:00.040Z", 40,
                  "connection reset"),
          attempt(0, "fetch", 2, "finished", "2026-12-07T10:00:01.040Z", "2026-12-07T10:00:01.060Z", 20),
          attempt(1, "charge", 1, "yield", "2026-12-07T10:00:01.070Z", "2026-12-07T10:00:03.070Z", 2000),
          attempt(1, "charge", 1, "crashed", "2026-12-07T10:00:04.000Z", "2026-12-07T10:00:34.500Z", 30500),
          attempt(1, "charge", 1, "errored", "2026-12-07T10:00:35.000Z", "2026-12-07T10:00:35.010Z", 10,
                  "card declined")};
}

}  // namespace

TEST_CASE("milliseconds between two store timestamps, across a day and a leap day") {
  CHECK(executor::milliseconds_between("2026-12-07T10:00:00.040Z", "2026-12-07T10:00:01.040Z") == 1000);
  CHECK(executor::milliseconds_between("2024-02-28T23:59:59.999Z", "2024-03-01T00:00:00.000Z") ==
        86400001);
  CHECK(executor::milliseconds_between("2026-12-07T10:00:01.000Z", "2026-12-07T10:00:00.000Z") == -1000);
  CHECK_FALSE(executor::milliseconds_between("yesterday", "2026-12-07T10:00:00.000Z"));
  CHECK_FALSE(executor::milliseconds_between("2026-12-07 10:00:00", "2026-12-07T10:00:00.000Z"));
}

TEST_CASE("an errored program: the reason names the step, its attempts and the error") {
  store::ProgramRow row = program(1);
  row.errored_at = "2026-12-07T10:00:35.010Z";
  row.error_message = "card declined";
  auto attempts = eventful();
  attempts.back().exception_type = "std::runtime_error";
  CHECK(executor::explain_reason(row, attempts) ==
        "errored at step 2 of 3 (charge) after 3 attempts: card declined (std::runtime_error)");

  const std::vector<std::string> lines = executor::format_timeline(row, attempts);
  // header, 5 attempts, 3 waits (retry delay, after the yield, after the crash), reason
  REQUIRE(lines.size() == 10);
  CHECK_THAT(lines[0], Catch::StartsWith("program r1: errored, 3 jobs"));
  CHECK_THAT(lines[1], Catch::Contains("step 1  fetch") && Catch::Contains("attempt 1") &&
                           Catch::Contains("retry") && Catch::Contains("40 ms") &&
                           Catch::Contains("on host-a:4242:0") && Catch::Contains("connection reset"));
  CHECK(lines[2] == "      waited 1.0 s (retry delay)");
  CHECK_THAT(lines[3], Catch::Contains("finished"));
  CHECK_THAT(lines[4], Catch::Contains("yield") && Catch::Contains("2.0 s"));
  CHECK(lines[5] == "      waited 930 ms (after the yield)");
  CHECK_THAT(lines[6], Catch::Contains("crashed") && Catch::Contains("30.5 s") &&
                           Catch::Contains("the worker died; noticed when its claim was taken over at "
                                           "2026-12-07T10:00:34.500Z"));
  CHECK(lines[7] == "      waited 500 ms (after the crash was noticed)");
  CHECK_THAT(lines[8], Catch::Contains("errored") && Catch::Contains("std::runtime_error: card declined"));
  CHECK(lines[9] == "why: " + executor::explain_reason(row, attempts));
}

TEST_CASE("explain --json: exactly the documented fields, attempts oldest first") {
  store::ProgramRow row = program(1);
  row.errored_at = "2026-12-07T10:00:35.010Z";
  row.error_message = "card declined";
  const json j = executor::explain_json(row, eventful());
  CHECK(j.size() == 4);
  CHECK(j["runId"] == "r1");
  CHECK(j["state"] == "errored");
  CHECK(j["reason"] == executor::explain_reason(row, eventful()));
  REQUIRE(j["attempts"].size() == 5);
  const json& first = j["attempts"][0];
  CHECK(first.size() == 10);
  CHECK(first["step"] == 0);
  CHECK(first["job"] == "fetch");
  CHECK(first["attempt"] == 1);
  CHECK(first["outcome"] == "retry");
  CHECK(first["worker"] == "host-a:4242:0");
  CHECK(first["startedAt"] == "2026-12-07T10:00:00.000Z");
  CHECK(first["endedAt"] == "2026-12-07T10:00:00.040Z");
  CHECK(first["durationMs"] == 40);
  CHECK(first["error"] == "connection reset");
  CHECK(j["attempts"][1]["error"].is_null());
  CHECK(j["attempts"][1]["exceptionType"].is_null());
  CHECK(j["attempts"][4]["outcome"] == "errored");
}

TEST_CASE("why a program is where it is, for every state") {
  SECTION("finished: counts of attempts, retries, yields and crashes") {
    store::ProgramRow row = program(3);
    row.finished_at = "2026-12-07T10:01:00.000Z";
    auto attempts = eventful();
    attempts.back().outcome = "finished";
    CHECK(executor::explain_reason(row, attempts) ==
          "finished: all 3 steps committed after 5 attempts (1 retry, 1 yield, 1 crash)");
    CHECK(executor::explain_reason(row, {}) == "finished: all 3 steps committed (no attempt history)");
  }
  SECTION("cancelled while a step ran") {
    store::ProgramRow row = program(1);
    row.errored_at = row.cancelled_at = "2026-12-07T10:00:05.000Z";
    row.error_message = "cancelled";
    const std::vector<store::AttemptRecord> attempts{
        attempt(1, "charge", 1, "cancelled", "2026-12-07T10:00:04.000Z", "2026-12-07T10:00:06.000Z", 2000)};
    CHECK(executor::explain_reason(row, attempts) ==
          "cancelled by an operator at 2026-12-07T10:00:05.000Z while at step 2 of 3 (charge); the attempt "
          "running then (on host-a:4242:0) was stopped and its outcome dropped");
  }
  SECTION("ignored") {
    store::ProgramRow row = program(2);
    row.errored_at = "2026-12-07T10:00:05.000Z";
    row.error_message = "nothing to mail";
    const std::vector<store::AttemptRecord> attempts{
        attempt(2, "mail", 1, "ignored", "2026-12-07T10:00:04.000Z", "2026-12-07T10:00:05.000Z", 1000,
                "nothing to mail")};
    CHECK(executor::explain_reason(row, attempts) ==
          "errored at step 3 of 3 (mail) after 1 attempt: the job gave up with an IgnorableError (expected): "
          "nothing to mail");
  }
  SECTION("running: on a worker, waiting for a retry, after a yield, after a crash, or queued") {
    store::ProgramRow row = program(0);
    const auto retry = attempt(0, "fetch", 1, "retry", "2026-12-07T10:00:00.000Z",
                               "2026-12-07T10:00:00.040Z", 40, "connection reset");
    CHECK(executor::explain_reason(row, {retry}) ==
          "running: step 1 of 3 (fetch) waits for its retry after attempt 1 failed: connection reset");
    auto yielded = retry;
    yielded.outcome = "yield";
    CHECK(executor::explain_reason(row, {yielded}) ==
          "running: step 1 of 3 (fetch) yielded (its time slice ran out) and resumes at its next delivery");
    auto crashed = retry;
    crashed.outcome = "crashed";
    CHECK(executor::explain_reason(row, {crashed}) ==
          "running: the worker running step 1 of 3 (fetch) (host-a:4242:0) died; the step runs again, "
          "isolated in a process of its own");
    CHECK(executor::explain_reason(row, {}) == "running: step 1 of 3 (fetch) waits for a worker");
    row.lease_owner = "host-b:7:1";
    row.step_retry_count = 1;
    CHECK(executor::explain_reason(row, {retry}) == "running: step 1 of 3 (fetch) runs on host-b:7:1 (attempt 2)");
  }
  SECTION("a resumed step counts only its attempts since the resume") {
    store::ProgramRow row = program(0);
    row.errored_at = "2026-12-07T11:00:00.000Z";
    row.error_message = "boom again";
    const std::vector<store::AttemptRecord> attempts{
        attempt(0, "fetch", 1, "finished", "2026-12-07T10:00:00.000Z", "2026-12-07T10:00:00.010Z", 10),
        attempt(1, "charge", 1, "errored", "2026-12-07T10:00:00.020Z", "2026-12-07T10:00:00.030Z", 10, "boom"),
        attempt(0, "fetch", 1, "errored", "2026-12-07T11:00:00.000Z", "2026-12-07T11:00:00.010Z", 10,
                "boom again")};
    CHECK(executor::explain_reason(row, attempts) == "errored at step 1 of 3 (fetch) after 1 attempt: boom again");
  }
}

TEST_CASE("a history that starts after the first step says so (taken over from program-executor-js)") {
  store::ProgramRow row = program(2);
  row.finished_at = "2026-12-07T10:01:00.000Z";
  row.step = 3;
  const std::vector<store::AttemptRecord> attempts{
      attempt(2, "mail", 1, "finished", "2026-12-07T10:00:59.000Z", "2026-12-07T10:01:00.000Z", 1000)};
  const std::vector<std::string> lines = executor::format_timeline(row, attempts);
  REQUIRE(lines.size() == 4);
  CHECK_THAT(lines[1], Catch::Contains("no history before step 3") &&
                           Catch::Contains("taken over from program-executor-js"));
}
