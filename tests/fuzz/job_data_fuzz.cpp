// The job data handler (shallow merge, as the original) on arbitrary job data
// and arbitrary operations: what a plugin, or an earlier program-executor-js
// deployment sharing the table, can put there. The handler is checked against
// a model of the SDK's contract (get() is this job's data or {}; set() and
// merge() take objects only; merge replaces top-level keys), other jobs' data
// must stay untouched, and the result must survive the store's JSON
// serialization. Runs over the in-memory store of tests/support/fakes.hpp.
#include <fuzzer/FuzzedDataProvider.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "program_executor/executor/job_data_handler.hpp"
#include "support/fakes.hpp"

namespace executor = program_executor::executor;
using nlohmann::json;

namespace {

void require(bool condition) {
  if (!condition) __builtin_trap();
}

// Mostly JSON text, so objects with nested values are common; sometimes a
// string of raw bytes (a plugin builds those without any parser, invalid
// UTF-8 included).
json value_from(FuzzedDataProvider& input) {
  if (input.ConsumeIntegralInRange(0, 4) == 0) return json(input.ConsumeRandomLengthString(32));
  json value = json::parse(input.ConsumeRandomLengthString(256), nullptr, false);
  return value.is_discarded() ? json::object() : value;
}

// What get() must return for stored data `stored` (absent: null).
json expected_get(const json& stored) { return stored.is_object() ? stored : json::object(); }

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  FuzzedDataProvider input(data, size);
  program_executor::test::FakeProgramStore store;
  program_executor::store::NewProgram program;
  program.run_id = "run";
  program.jobs = {"job", "other"};
  json stored = value_from(input);  // this job's data as the row holds it
  const json other = value_from(input);
  program.job_data = {{"job", stored}, {"other", other}};
  store.insert(program);
  const auto claim = store.claim("run", 0, "fuzz", std::chrono::minutes(1));
  require(claim.has_value());
  executor::StoreJobDataHandler handler(store, "run", "job", claim->token,
                                        std::chrono::steady_clock::now());

  for (int operations = 0; operations < 16 && input.remaining_bytes() > 0; ++operations) {
    const int operation = input.ConsumeIntegralInRange(0, 3);
    const json value = value_from(input);
    bool accepted = true;
    try {
      switch (operation) {
        case 0:
          require(handler.get() == expected_get(stored));
          continue;
        case 1:
          handler.set(value);
          break;
        case 2:
          handler.merge(value);
          break;
        default:
          handler.checkpoint(value, std::chrono::milliseconds(0));  // no limit: never throws
          break;
      }
    } catch (const std::invalid_argument&) {
      accepted = false;
    }
    require(accepted == value.is_object());  // objects, and only objects
    if (accepted) {
      if (operation == 1) {
        stored = value;
      } else {
        json merged = expected_get(stored);
        for (const auto& [key, item] : value.items()) merged[key] = item;  // top level only
        stored = merged;
      }
    }
    require(handler.get() == expected_get(stored));
    require(store.row("run").job_data.at("other") == other);
  }

  // The SQL store keeps job data as JSON text: it must read back the same, or
  // fail as nlohmann says invalid UTF-8 (316) fails, never otherwise.
  const json all = store.row("run").job_data;
  try {
    require(json::parse(all.dump()) == all);
  } catch (const json::type_error& error) {
    require(error.id == 316);
  }
  return 0;
}
