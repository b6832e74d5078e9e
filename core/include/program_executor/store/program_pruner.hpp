// Deleting ended programs in bounded batches (`program-executor prune`).
#pragma once

#include <chrono>
#include <functional>
#include <string_view>

#include "program_executor/store/program_store.hpp"

namespace program_executor::store {

/// Rows per DELETE statement: small enough that no batch holds locks or grows
/// the transaction log for long, large enough that millions of rows take
/// minutes, not hours.
inline constexpr int default_prune_batch = 1000;

/// What a prune did.
struct PruneReport {
  long long deleted = 0;  ///< programs deleted
  int batches = 0;        ///< DELETE statements run
};

/// The moment `--finished-before` names: a DURATION back from `now` ("90d",
/// "12h", "30m", "45s", "2w"; a whole number and one unit) or a UTC
/// TIMESTAMP ("2026-01-31", "2026-01-31T12:00:00Z", fractions of a second
/// allowed; no other time zone). Throws std::invalid_argument naming the
/// accepted forms, and for a moment later than `now`.
std::chrono::system_clock::time_point parse_cutoff(std::string_view text,
                                                   std::chrono::system_clock::time_point now);

/// Deletes every program that ended (finished, errored or cancelled) before
/// `cutoff`, `batch_size` rows per statement, until a batch comes back short.
/// The cutoff is a moment on this host's clock, turned into an age at each
/// batch and compared by the database with its own clock (skew between the
/// two shifts it). `on_batch(report so far)` runs after each batch. A failing
/// batch throws StoreError; the batches before it stay deleted, and running
/// the prune again continues where it stopped.
PruneReport prune_ended(ProgramStore& store, std::chrono::system_clock::time_point cutoff,
                        int batch_size = default_prune_batch,
                        const std::function<void(const PruneReport&)>& on_batch = {});

}  // namespace program_executor::store
