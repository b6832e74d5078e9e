// How long each phase of talking to the broker may take.
#pragma once

#include <chrono>

namespace program_executor::amqp {

// A dead broker or network must never block a call forever: each phase has a bound.
constexpr std::chrono::seconds connect_timeout{10};
constexpr std::chrono::seconds rpc_timeout{30};
constexpr std::chrono::seconds confirm_timeout{30};
// Closing politely must not hold up a shutdown when the broker is unresponsive.
constexpr std::chrono::seconds close_timeout{5};
// The attempt of our own that explains a failed connect (connect_diagnosis.hpp):
// the failure is already known, only its reason is sought.
constexpr std::chrono::seconds diagnosis_timeout{2};

}  // namespace program_executor::amqp
