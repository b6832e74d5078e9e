// Step messages and job data that once escaped the executor's checks, found by
// the libFuzzer harnesses of tests/fuzz (their inputs are regression seeds in
// tests/fuzz/corpus/).
#include <chrono>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "program_executor/executor/job_data_handler.hpp"
#include "program_executor/executor/step_message.hpp"
#include "support/fakes.hpp"

namespace executor = program_executor::executor;
using nlohmann::json;

TEST_CASE("a number too large for a double makes an invalid message, to be parked",
          "[executor][hostile]") {
  // nlohmann throws out_of_range (not parse_error) here; it used to escape
  // parse_step_message, and the step processor had the message retried forever.
  const auto [body, number] = GENERATE(table<std::string, std::string>({
      {R"({"jobs":["a"],"runId":"r","n":1e400})", "1e400"},
      {R"({"jobs":["a"],"runId":"r","programData":{"x":[-1e999]}})", "-1e999"},
  }));
  INFO(body);
  CHECK_THROWS_MATCHES(executor::parse_step_message(body), executor::InvalidMessage,
                       Catch::Message("body is not JSON: [json.exception.out_of_range.406] "
                                      "number overflow parsing '" + number + "'"));
}

TEST_CASE("job data that is not an object reads as none", "[executor][hostile]") {
  const json stored = GENERATE(json(5), json("text"), json::array({1, 2}), json(nullptr));
  INFO(stored.dump());
  program_executor::test::FakeProgramStore store;
  program_executor::store::NewProgram program;
  program.run_id = "run";
  program.jobs = {"job"};
  program.job_data = {{"job", stored}};
  store.insert(program);
  const auto claim = store.claim("run", 0, "test", std::chrono::minutes(1));
  REQUIRE(claim);
  executor::StoreJobDataHandler handler(store, "run", "job", claim->token,
                                        std::chrono::steady_clock::now());
  CHECK(handler.get() == json::object());  // the SDK promises an object
  handler.merge({{"k", 1}});
  CHECK(handler.get() == json{{"k", 1}});
}
