#include "program_executor/store/program_store.hpp"

namespace program_executor::store {

// The defaults read one row at a time and claim nothing unread; a store that
// can do better (SqlProgramStore) overrides them. The single-step claim and
// commits are the batch ones for a batch of one.

std::vector<std::optional<ProgramRow>> ProgramStore::find_all(
    const std::vector<std::string>& run_ids) {
  std::vector<std::optional<ProgramRow>> rows;
  rows.reserve(run_ids.size());
  for (const std::string& run_id : run_ids) rows.push_back(find(run_id));
  return rows;
}

StateCounts ProgramStore::count_by_state() {
  StateCounts counts;
  ProgramFilter page;
  page.limit = 1000;
  while (true) {
    const std::vector<ProgramRow> rows = list(page);
    for (const ProgramRow& row : rows) {
      const std::string state = row.state();
      if (state == "running") ++counts.running;
      else if (state == "finished") ++counts.finished;
      else if (state == "errored") ++counts.errored;
      else ++counts.cancelled;
    }
    if (static_cast<int>(rows.size()) < page.limit) return counts;
    page.before_id = rows.back().id;
  }
}

std::optional<StepClaim> ProgramStore::claim(const std::string& run_id, int step,
                                             const std::string& owner,
                                             std::chrono::milliseconds lease) {
  return claim_all({ClaimRequest{run_id, step}}, owner, lease).front();
}

std::vector<std::optional<ClaimedRow>> ProgramStore::claim_unread(
    const std::vector<UnreadClaim>& requests, const std::string& /*owner*/,
    std::chrono::milliseconds /*lease*/) {
  return std::vector<std::optional<ClaimedRow>>(requests.size());
}

bool ProgramStore::advance(const std::string& run_id, int step, std::int64_t token,
                           std::chrono::milliseconds expect_within) {
  return commit_all({StepCommit{run_id, step, token, false, std::nullopt}}, expect_within).front();
}

std::vector<AttemptRecord> ProgramStore::attempts(const std::string& /*run_id*/) { return {}; }

long long ProgramStore::prune_attempts(std::chrono::milliseconds /*older_than*/, int /*limit*/) {
  return 0;
}

bool ProgramStore::finish(const std::string& run_id, int step, std::int64_t token) {
  return commit_all({StepCommit{run_id, step, token, true, std::nullopt}}, {}).front();
}

}  // namespace program_executor::store
