// The two clocks the executor reads as milliseconds, written once: the
// monotonic one for heartbeats and ages inside a process, the wall clock for
// what leaves it (message timestamps).
#pragma once

#include <cstdint>

namespace program_executor::executor {

/// Milliseconds on the monotonic clock (std::chrono::steady_clock): only
/// differences mean anything, and only within one process.
std::int64_t steady_ms();

/// Milliseconds since the Unix epoch on the wall clock, as AMQP timestamps
/// and program-executor-js's dates carry them.
std::int64_t epoch_ms();

}  // namespace program_executor::executor
