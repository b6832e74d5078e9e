// The wire format, run ids, program creation and status rendering.
#include <chrono>
#include <regex>
#include <set>
#include <thread>

#include <catch2/catch.hpp>

#include "program_executor/executor/program_creator.hpp"
#include "program_executor/executor/program_status.hpp"
#include "program_executor/executor/clock.hpp"
#include "program_executor/executor/step_message.hpp"
#include "program_executor/executor/step_publishing.hpp"
#include "support/fakes.hpp"

using namespace program_executor;
using nlohmann::json;

TEST_CASE("a message in program-executor-js's shape parses, keeping unknown keys") {
  const std::string body =
      R"({"jobs":["a","b"],"programData":{"x":1},"runId":"1616161616161123456","traceId":"t"})";
  auto message = executor::parse_step_message(body);
  CHECK(message.run_id == "1616161616161123456");
  CHECK(message.jobs == std::vector<std::string>{"a", "b"});
  CHECK(message.current_job() == "a");
  CHECK(message.program_data() == json{{"x", 1}});
  const json next = json::parse(executor::next_step_body(message));
  CHECK(next == json{{"jobs", {"b"}}, {"programData", {{"x", 1}}}, {"runId", "1616161616161123456"},
                     {"traceId", "t"}});
}

TEST_CASE("a message without programData has empty program data") {
  auto message = executor::parse_step_message(R"({"jobs":["a"],"runId":"r"})");
  CHECK(message.program_data() == json::object());
}

TEST_CASE("the first step body has exactly the original's three keys") {
  const json body = json::parse(executor::first_step_body("r", {"a", "b"}, {{"k", "v"}}));
  CHECK(body == json{{"jobs", {"a", "b"}}, {"programData", {{"k", "v"}}}, {"runId", "r"}});
}

TEST_CASE("run ids are version 7 UUIDs: unique, led by their creation time") {
  static const std::regex uuid("^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$");
  const auto milliseconds = [] {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  };
  // The first 48 bits (12 hex digits, the dash skipped) are the Unix time in ms.
  const auto time_of = [](const std::string& id) {
    return std::stoll(id.substr(0, 8) + id.substr(9, 4), nullptr, 16);
  };
  std::set<std::string> seen;
  const long long before = milliseconds();
  for (int i = 0; i < 1000; ++i) {
    const std::string id = executor::new_run_id();
    CHECK(std::regex_match(id, uuid));
    seen.insert(id);
  }
  const std::string last = executor::new_run_id();
  const long long after = milliseconds();
  CHECK(seen.size() == 1000);
  CHECK(time_of(*seen.begin()) >= before);
  CHECK(time_of(last) <= after);
  // Ids of different milliseconds sort by time (within one they are random).
  std::this_thread::sleep_for(std::chrono::milliseconds(2));
  const std::string later = executor::new_run_id();
  CHECK(later > last);
  CHECK(later > *seen.rbegin());
}

TEST_CASE("creating a program inserts the row, then publishes its first step") {
  test::FakeProgramStore store;
  test::FakePublisher publisher;
  executor::ProgramCreator creator(store, publisher, "q", false);
  sdk::ProgramRequest request;
  request.jobs = {"a", "b"};
  request.program_data = {{"p", 1}};
  request.job_data = {{"a", {{"n", 2}}}};
  const std::string run_id = creator.create(request);
  const auto row = store.row(run_id);
  CHECK(row.step == 0);
  CHECK(row.jobs == request.jobs);
  CHECK(row.job_data == request.job_data);
  REQUIRE(publisher.published.size() == 1);
  CHECK(publisher.published[0].queue == "q");
  CHECK_FALSE(publisher.published[0].properties.persistent);
  CHECK(publisher.published[0].properties.timestamp.has_value());
  CHECK(json::parse(publisher.published[0].body)["runId"] == run_id);
}

TEST_CASE("every step message is published the same way: remaining jobs, persistence, a timestamp") {
  // The creator, the sweeper, resume and --rerun-finished all publish through
  // publish_step; resume used to send its message without a timestamp.
  test::FakePublisher publisher;
  const std::int64_t before = executor::epoch_ms();
  executor::publish_step(publisher, "q", true, "r1", {"a", "b", "c"}, 1, json{{"p", 1}});
  const std::int64_t after = executor::epoch_ms();
  REQUIRE(publisher.published.size() == 1);
  const auto& sent = publisher.published[0];
  CHECK(sent.queue == "q");
  CHECK(json::parse(sent.body) ==
        json{{"jobs", {"b", "c"}}, {"programData", {{"p", 1}}}, {"runId", "r1"}});
  CHECK(sent.properties.persistent);
  REQUIRE(sent.properties.timestamp.has_value());
  CHECK(*sent.properties.timestamp >= before);
  CHECK(*sent.properties.timestamp <= after);

  executor::publish_step(publisher, "q", false, "r1", {"a", "b", "c"}, 2, json::object());
  CHECK(json::parse(publisher.published.back().body)["jobs"] == json{"c"});
  CHECK_FALSE(publisher.published.back().properties.persistent);
  // A step outside the program publishes nothing.
  CHECK_THROWS_AS(executor::publish_step(publisher, "q", true, "r1", {"a"}, 1, json::object()),
                  std::out_of_range);
  CHECK_THROWS_AS(executor::publish_step(publisher, "q", true, "r1", {"a"}, -1, json::object()),
                  std::out_of_range);
  CHECK(publisher.published.size() == 2);
}

TEST_CASE("a program whose first step cannot be published is errored, not orphaned") {
  test::FakeProgramStore store;
  test::FakePublisher publisher;
  publisher.fail = true;
  executor::ProgramCreator creator(store, publisher, "q", true);
  sdk::ProgramRequest request;
  request.jobs = {"a"};
  CHECK_THROWS_WITH(creator.create(request), Catch::Contains("nacked"));
}

TEST_CASE("invalid program requests are refused before anything is written") {
  test::FakeProgramStore store;
  test::FakePublisher publisher;
  executor::ProgramCreator creator(store, publisher, "q", true);
  sdk::ProgramRequest empty;
  CHECK_THROWS_AS(creator.create(empty), std::invalid_argument);
  sdk::ProgramRequest bad_data;
  bad_data.jobs = {"a"};
  bad_data.program_data = json::array();
  CHECK_THROWS_AS(creator.create(bad_data), std::invalid_argument);
  sdk::ProgramRequest blank_job;
  blank_job.jobs = {""};
  CHECK_THROWS_AS(creator.create(blank_job), std::invalid_argument);
  CHECK(publisher.published.empty());
}

TEST_CASE("status tells running, finished, errored and cancelled apart") {
  store::ProgramRow row;
  row.run_id = "r";
  row.jobs = {"a", "b", "c"};
  row.step = 1;
  row.step_retry_count = 2;
  row.error_message = "flaky";
  CHECK(executor::program_state(row) == "running");
  const std::string text = executor::format_status(row);
  CHECK_THAT(text, Catch::Contains("state         running"));
  CHECK_THAT(text, Catch::Contains("step          2 of 3"));
  CHECK_THAT(text, Catch::Matches("(.|\n)*1\\. a +done(.|\n)*2\\. b +current(.|\n)*"));
  CHECK_THAT(text, Catch::Contains("retries       2"));
  row.errored_at = "t";
  CHECK(executor::program_state(row) == "errored");
  row.error_message = "cancelled";  // a job's failure, whatever its text
  CHECK(executor::program_state(row) == "errored");
  row.cancelled_at = "t";
  CHECK(executor::program_state(row) == "cancelled");
  row.errored_at.reset();
  row.finished_at = "t";
  CHECK(executor::program_state(row) == "finished");
  const json j = json::parse(executor::status_json(row));
  CHECK(j["state"] == "finished");
  for (const char* column : {"id", "run_id", "jobs", "step", "finished_at", "errored_at",
                             "error_message", "step_retry_count", "job_data", "program_data",
                             "created_at", "updated_at"}) {
    CHECK(j.contains(column));
  }
}

TEST_CASE("error messages are cut to 255 characters, whole UTF-8 sequences only") {
  CHECK(store::truncate_error_message("short") == "short");
  const std::string long_ascii(300, 'x');
  CHECK(store::truncate_error_message(long_ascii).size() == 255);
  // As varchar(255) counts on PostgreSQL and MySQL (utf8mb4): characters.
  std::string accents;
  for (int i = 0; i < 200; ++i) accents += "é";  // 2 bytes each: kept whole
  CHECK(store::truncate_error_message(accents) == accents);
  std::string mixed;
  for (int i = 0; i < 300; ++i) mixed += i % 2 ? "€" : "a";  // 3 bytes and 1
  const std::string cut = store::truncate_error_message(mixed);
  CHECK(cut.size() == 128 * 1 + 127 * 3);  // 255 characters
  CHECK(cut == mixed.substr(0, cut.size()));
  CHECK(json(cut).dump().size() > 0);  // still valid UTF-8
}
