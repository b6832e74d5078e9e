// The names a daemon and its workers go by in the programs table: a claim's
// lease_owner is "host:pid:worker", and the steps-per-minute table counts per
// "host:pid". One definition, so an operator can match the two by prefix.
#pragma once

#include <string>

namespace program_executor::executor {

/// This host's name (gethostname), the first part of the identities below.
std::string host_name();

/// "host:pid" of this process.
std::string process_identity();

/// "host:pid:index": the owner written into the claims worker `index` takes.
std::string worker_identity(int index);

}  // namespace program_executor::executor
