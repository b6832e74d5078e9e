// The broker URLs of a cluster that tests/cluster/rabbitmq-cluster runs, for
// the tools that point daemons at it (chaos-run --cluster, pe-bench --cluster).
#pragma once

#include <cstdio>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace program_executor::cluster {

/// `bash SCRIPT urls`, one URL a line. Throws std::runtime_error when the
/// script fails (no cluster running) or prints none.
inline std::vector<std::string> cluster_urls(const std::string& script) {
  const std::string command = "bash '" + script + "' urls";
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) throw std::runtime_error("cannot run " + command);
  std::string out;
  char buffer[512];
  while (std::fgets(buffer, sizeof buffer, pipe) != nullptr) out += buffer;
  if (::pclose(pipe) != 0) throw std::runtime_error(command + " failed (is the cluster running?): " + out);
  std::vector<std::string> urls;
  std::istringstream lines(out);
  for (std::string line; std::getline(lines, line);) {
    if (!line.empty()) urls.push_back(line);
  }
  if (urls.empty()) throw std::runtime_error(command + " printed no URL");
  return urls;
}

}  // namespace program_executor::cluster
