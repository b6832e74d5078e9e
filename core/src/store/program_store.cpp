#include "program_executor/store/program_store.hpp"

namespace program_executor::store {

// The defaults take one transaction per step; a store that can group them
// (SqlProgramStore) overrides these to pay for one commit per batch.

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

std::vector<std::optional<StepClaim>> ProgramStore::claim_all(
    const std::vector<ClaimRequest>& requests, const std::string& owner,
    std::chrono::milliseconds lease) {
  std::vector<std::optional<StepClaim>> claims;
  claims.reserve(requests.size());
  for (const ClaimRequest& request : requests) {
    claims.push_back(claim(request.run_id, request.step, owner, lease));
  }
  return claims;
}

std::vector<std::optional<ClaimedRow>> ProgramStore::claim_unread(
    const std::vector<UnreadClaim>& requests, const std::string& /*owner*/,
    std::chrono::milliseconds /*lease*/) {
  return std::vector<std::optional<ClaimedRow>>(requests.size());
}

std::vector<bool> ProgramStore::commit_all(const std::vector<StepCommit>& commits,
                                           std::chrono::milliseconds expect_within) {
  std::vector<bool> matched;
  matched.reserve(commits.size());
  for (const StepCommit& commit : commits) {
    matched.push_back(commit.last ? finish(commit.run_id, commit.step, commit.token)
                                  : advance(commit.run_id, commit.step, commit.token, expect_within));
  }
  return matched;
}

}  // namespace program_executor::store
