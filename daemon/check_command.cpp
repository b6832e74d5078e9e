// `program-executor check`, the `nginx -t` of the daemon: everything `run`
// would refuse, and what would let other users read a secret or keep the
// daemon's user from its files, without starting anything. Problems exit 1;
// warnings exit 0 unless --strict. --connect also reaches the broker and the
// database, changing nothing.
#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli_errors.hpp"
#include "command_config.hpp"
#include "commands.hpp"
#include "program_executor/amqp/broker_nodes.hpp"
#include "program_executor/amqp/connection.hpp"
#include "program_executor/log/logger.hpp"
#include "program_executor/plugin/plugin_loader.hpp"
#include "program_executor/plugin/trusted_file.hpp"
#include "sqlite_file.hpp"

namespace program_executor::daemon {
namespace {

namespace fs = std::filesystem;

struct Findings {
  std::vector<std::string> problems;  ///< `run` would fail, or anyone could steer the daemon
  std::vector<std::string> warnings;  ///< a risk, or what would fail later
  std::vector<std::string> notes;     ///< what --connect found, for the report
};

// Files that would let other users read a secret of the daemon or steer it,
// one sentence each, naming the file, its mode and the fix. Only paths and
// key names are printed, never a value.
void exposure_findings(const config::Config& config, const std::string& config_path,
                       Findings& findings) {
  struct stat st {};
  if (::stat(config_path.c_str(), &st) == 0) {
    if (!config.secrets_in_file.empty() && (st.st_mode & S_IROTH) != 0) {
      // The fix names the password file of each key that holds a password.
      std::string keys;
      std::string files;
      for (const std::string& key : config.secrets_in_file) {
        keys += (keys.empty() ? "" : ", ") + key;
        const std::string file = key.substr(0, key.find('.')) + ".password_file";
        files += (files.empty() ? "" : " and ") + file;
      }
      findings.warnings.push_back(config_path + " holds a password (" + keys +
                                  ") and is readable by every user (mode " +
                                  plugin::mode_text(st.st_mode) + "): chmod o-r it, or take the password from " +
                                  files + ", a systemd credential or an environment variable");
    }
    if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
      findings.problems.push_back(
          config_path + " is writable by " +
          ((st.st_mode & S_IWOTH) != 0 ? "every user" : "its group") + " (mode " +
          plugin::mode_text(st.st_mode) +
          "): whoever can write it chooses the plugins the daemon runs; chmod go-w it");
    }
  }
  const auto readable_secret = [&](const std::string& path, const char* key) {
    if (!path.empty() && ::stat(path.c_str(), &st) == 0 && (st.st_mode & S_IROTH) != 0) {
      findings.warnings.push_back(path + " (" + key + ") is readable by every user (mode " +
                                  plugin::mode_text(st.st_mode) + "): chmod o-r it");
    }
  };
  readable_secret(config.amqp.password_file, "amqp.password_file");
  readable_secret(config.database.password_file, "database.password_file");
  readable_secret(config.amqp.tls.key_file, "amqp.tls.key_file");
  // serve's: a token readable by every user is an operator's power for anyone.
  readable_secret(config.web.operator_token_file, "web.operator_token_file");
  readable_secret(config.web.viewer_token_file, "web.viewer_token_file");
  readable_secret(config.web.tls_key_file, "web.tls.key_file");
}

// TLS files `run` opens when it connects: missing ones are refused then.
void tls_file_findings(const config::Config& config, Findings& findings) {
  const auto must_exist = [&](const std::string& path, const char* key) {
    struct stat st {};
    if (!path.empty() && ::stat(path.c_str(), &st) != 0) {
      findings.problems.push_back(std::string(key) + ": " + path + ": " +
                                  std::generic_category().message(errno));
    }
  };
  must_exist(config.amqp.tls.ca_file, "amqp.tls.ca_file");
  must_exist(config.amqp.tls.cert_file, "amqp.tls.cert_file");
  must_exist(config.amqp.tls.key_file, "amqp.tls.key_file");
}

// One access the daemon's user needs: R_OK, W_OK or X_OK bits on `path`.
struct Probe {
  fs::path path;
  int access;
  std::string why;  ///< "the config", "the SQLite database", ...
};

std::string access_text(int access) {
  if (access == (W_OK | X_OK)) return "create files in";
  if (access == (R_OK | X_OK)) return "list";
  if (access == W_OK) return "write";
  return "read";
}

// Whether `user` may access `path`, from the mode bits of the file and of
// every directory above it (search permission). ACLs are not read: the
// estimate used when this process cannot become the user.
bool estimate_access(const passwd& user, const std::vector<gid_t>& groups, const fs::path& path,
                     int access) {
  if (user.pw_uid == 0) return true;
  const auto allowed = [&](const struct stat& st, int want) {
    mode_t bits = 0;
    if (st.st_uid == user.pw_uid) {
      bits = (st.st_mode >> 6) & 7;
    } else if (std::find(groups.begin(), groups.end(), st.st_gid) != groups.end()) {
      bits = (st.st_mode >> 3) & 7;
    } else {
      bits = st.st_mode & 7;
    }
    return (bits & static_cast<mode_t>(want)) == static_cast<mode_t>(want);
  };
  struct stat st {};
  const fs::path absolute = fs::absolute(path);
  for (fs::path dir = absolute.parent_path();; dir = dir.parent_path()) {
    if (::stat(dir.c_str(), &st) == 0 && !allowed(st, X_OK)) return false;
    if (dir == dir.parent_path()) break;
  }
  if (::stat(absolute.c_str(), &st) != 0) return true;  // missing: reported elsewhere
  return allowed(st, access);
}

// The probes `user` fails. As root, tried for real in a child that becomes
// the user (ACLs and all); otherwise estimated from the mode bits.
std::vector<const Probe*> failed_probes(const passwd& user, const std::vector<Probe>& probes) {
  std::vector<const Probe*> failed;
  if (::geteuid() == 0 && user.pw_uid != 0) {
    int pipe_fds[2];
    if (::pipe(pipe_fds) != 0) return failed;
    const pid_t child = ::fork();
    if (child == 0) {
      ::close(pipe_fds[0]);
      if (::initgroups(user.pw_name, user.pw_gid) != 0 || ::setgid(user.pw_gid) != 0 ||
          ::setuid(user.pw_uid) != 0) {
        ::_exit(2);
      }
      for (const Probe& probe : probes) {
        const char result = ::access(probe.path.c_str(), probe.access) == 0 ? '1' : '0';
        if (::write(pipe_fds[1], &result, 1) != 1) ::_exit(3);
      }
      ::_exit(0);
    }
    ::close(pipe_fds[1]);
    std::string results;
    char buffer[256];
    ssize_t count = 0;
    while ((count = ::read(pipe_fds[0], buffer, sizeof buffer)) > 0) {
      results.append(buffer, static_cast<std::size_t>(count));
    }
    ::close(pipe_fds[0]);
    int status = 0;
    ::waitpid(child, &status, 0);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0 && results.size() == probes.size()) {
      for (std::size_t i = 0; i < probes.size(); ++i) {
        struct stat st {};
        // A missing file is reported elsewhere (or created by the daemon).
        if (results[i] == '0' && ::stat(probes[i].path.c_str(), &st) == 0) {
          failed.push_back(&probes[i]);
        }
      }
      return failed;
    }
  }
  int count = 64;
  std::vector<gid_t> groups(static_cast<std::size_t>(count));
  if (::getgrouplist(user.pw_name, user.pw_gid, groups.data(), &count) < 0) {
    groups.resize(static_cast<std::size_t>(count));
    ::getgrouplist(user.pw_name, user.pw_gid, groups.data(), &count);
  }
  groups.resize(static_cast<std::size_t>(std::max(count, 0)));
  for (const Probe& probe : probes) {
    if (!estimate_access(user, groups, probe.path, probe.access)) failed.push_back(&probe);
  }
  return failed;
}

// What the daemon's user must be able to read and write (issue 19, items 2
// and 3): the config, password and TLS files, the plugins, the SQLite file.
void user_access_findings(const config::Config& config, const std::string& config_path,
                          const std::string& user_name, Findings& findings) {
  const passwd* entry = ::getpwnam(user_name.c_str());
  if (entry == nullptr) {
    findings.notes.push_back("user " + user_name +
                             " does not exist here: its access to the files is not checked");
    return;
  }
  const passwd user = *entry;
  std::vector<Probe> probes;
  probes.push_back({config_path, R_OK, "the config"});
  const char* credentials = std::getenv("CREDENTIALS_DIRECTORY");
  const auto secret_file = [&](const std::string& path, const char* key) {
    if (path.empty()) return;
    // systemd hands credentials to the daemon itself, whoever owns the source.
    if (credentials != nullptr && *credentials != '\0' && path.rfind(credentials, 0) == 0) return;
    probes.push_back({path, R_OK, key});
  };
  secret_file(config.amqp.password_file, "amqp.password_file");
  secret_file(config.database.password_file, "database.password_file");
  secret_file(config.amqp.tls.ca_file, "amqp.tls.ca_file");
  secret_file(config.amqp.tls.cert_file, "amqp.tls.cert_file");
  secret_file(config.amqp.tls.key_file, "amqp.tls.key_file");
  if (!config.plugins.directory.empty()) {
    probes.push_back({config.plugins.directory, R_OK | X_OK, "the plugin directory"});
    std::error_code error;
    for (const auto& entry : fs::directory_iterator(config.plugins.directory, error)) {
      if (entry.path().extension() == ".so") probes.push_back({entry.path(), R_OK, "a plugin"});
    }
  }
  if (const auto file = sqlite_file(config.database)) {
    probes.push_back({*file, W_OK, "the SQLite database"});
    const fs::path directory = file->has_parent_path() ? file->parent_path() : fs::path(".");
    // SQLite creates the -wal and -shm files beside the database.
    probes.push_back({directory, W_OK | X_OK, "the SQLite database's directory"});
  }
  for (const Probe* probe : failed_probes(user, probes)) {
    std::string fix;
    if (probe->why == "the config") {
      fix = ": the daemon cannot start; install -m 0640 -g " + user_name + " it (or chgrp " +
            user_name + " and chmod g+r)";
    } else if (probe->why.rfind("the SQLite", 0) == 0) {
      fix = ": the daemon cannot write its database; chown " + user_name +
            " it (a command run as root may have created it)";
    } else {
      fix = ": the daemon will fail to read it; chgrp " + user_name + " and chmod g+r it";
    }
    findings.warnings.push_back(user_name + " (the daemon's user) cannot " +
                                access_text(probe->access) + " " + describe_file(probe->path) +
                                ", " + probe->why + fix);
  }
}

// One broker node: a note when it answers, else what failed, to report.
std::string broker_node_findings(const config::Config& config,
                                 const amqp::ConnectionSettings& settings, Findings& findings) {
  try {
    amqp::Connection connection(settings, "program-executor check");
    std::string queues;
    for (const amqp::QueueSpec& spec : amqp::QueueTopology::from(config.amqp).declarations()) {
      if (!connection.queue_exists(spec.name)) {
        queues += " " + spec.name + " (missing: run declares it)";
        continue;
      }
      // Declaring an existing queue with equal arguments changes nothing;
      // with other arguments the broker refuses, as it would refuse `run`.
      connection.declare(spec);
      queues += " " + spec.name + " (compatible)";
    }
    findings.notes.push_back("broker: " + settings.describe() + ": ok; queues:" + queues);
    return "";
  } catch (const std::exception& e) {
    return std::string("broker: ") + e.what();
  }
}

// --connect: the broker and the database as `run` would meet them, changing nothing.
// Each node of a cluster on its own: one that is down is a warning while
// another answers (the daemon fails over), a problem when none does.
void broker_findings(const config::Config& config, Findings& findings) {
  const amqp::BrokerNodes nodes = amqp::BrokerNodes::from(config.amqp, 0);
  std::vector<std::string> failures;
  for (const amqp::ConnectionSettings& settings : nodes.nodes()) {
    std::string failure = broker_node_findings(config, settings, findings);
    if (!failure.empty()) failures.push_back(std::move(failure));
  }
  const bool none_answered = failures.size() == nodes.size();
  for (std::string& failure : failures) {
    if (none_answered) {
      findings.problems.push_back(std::move(failure));
    } else {
      findings.warnings.push_back(std::move(failure) +
                                  " (another node answered: the daemon uses that one)");
    }
  }
}

void database_findings(const config::Config& config, Findings& findings) {
  try {
    if (const auto file = sqlite_file(config.database); file && !fs::exists(*file)) {
      findings.notes.push_back("database: " + file->string() +
                               " does not exist yet: run creates it");
      return;
    }
    const auto database = open_database_read_only(config, TableRequired::no);
    const store::SchemaStatus status = database->schema_status();
    const std::string table = "database: " + std::string(to_string(database->backend())) +
                              ": table " + config.database.table;
    if (!status.table_exists) {
      (config.database.migrate ? findings.notes : findings.problems)
          .push_back(table + " does not exist" +
                     (config.database.migrate ? ": run creates it (database.migrate)"
                                              : "; database.migrate is false: run "
                                                "`program-executor migrate`"));
    } else if (status.version < status.latest) {
      (config.database.migrate ? findings.notes : findings.problems)
          .push_back(table + " is at schema version " + std::to_string(status.version) +
                     ", this program needs " + std::to_string(status.latest) +
                     (config.database.migrate ? ": run migrates it (database.migrate)"
                                              : "; database.migrate is false: run "
                                                "`program-executor migrate`"));
    } else {
      findings.notes.push_back(table + ": ok, schema version " + std::to_string(status.version));
    }
  } catch (const std::exception& e) {
    findings.problems.push_back("database: " + message_of(e));
  }
}

}  // namespace

int check_config(const CommonOptions& options, const CheckOptions& check) {
  config::Config config;
  try {
    config = load_for_command(options);
  } catch (const std::exception& e) {
    return fail(code_of(e), message_of(e));
  }
  // The loader and the plugin loader log each failure as an event; the lines
  // below say it all.
  log::configure(log::Level::off, log::Format::text);

  Findings findings;
  exposure_findings(config, options.config_path, findings);
  tls_file_findings(config, findings);
  std::string plugins_line;
  std::vector<std::string> job_names;
  try {
    const plugin::JobRegistry registry = plugin::load_directory(config.plugins.directory);
    if (registry.size() == 0) {
      findings.problems.push_back(config.plugins.directory +
                                  ": holds no plugin (*.so): every job would be skipped");
    } else {
      plugins_line = "plugins: " + config.plugins.directory + ": " +
                     std::to_string(registry.size()) + " jobs:";
      for (const auto& job : registry.jobs()) {
        plugins_line += " " + job.name;
        job_names.push_back(job.name);
      }
    }
  } catch (const std::exception& e) {
    findings.problems.push_back(e.what());
  }
  user_access_findings(config, options.config_path, check.user, findings);
  if (check.connect) {
    broker_findings(config, findings);
    database_findings(config, findings);
  }

  const bool ok = findings.problems.empty() && (!check.strict || findings.warnings.empty());
  const UnitEnvironment& environment = last_unit_environment();
  if (options.json) {
    nlohmann::json report{{"config", options.config_path},
                          {"ok", ok},
                          {"problems", findings.problems},
                          {"warnings", findings.warnings},
                          {"notes", findings.notes},
                          {"jobs", job_names}};
    if (!ok) report["error"] = error_code::check_failed;
    if (environment.read) report["environment_file"] = environment.file.string();
    std::cout << report.dump() << "\n";
    return ok ? exit_ok : exit_failure;
  }
  for (const std::string& problem : findings.problems) {
    std::cerr << "program-executor: check: " << problem << "\n";
  }
  for (const std::string& warning : findings.warnings) {
    std::cerr << "program-executor: check: warning: " << warning << "\n";
  }
  if (!ok) {
    if (findings.problems.empty()) {
      std::cerr << "program-executor: check: --strict: warnings fail the check\n";
    }
    return exit_failure;
  }
  std::cout << "config: " << options.config_path << ": ok";
  if (!findings.warnings.empty()) {
    std::cout << " (" << findings.warnings.size() << " warning"
              << (findings.warnings.size() == 1 ? "" : "s") << ")";
  }
  std::cout << "\n" << plugins_line << "\n";
  if (environment.read) {
    std::cout << "environment: " << environment.file.string() << " (the unit's EnvironmentFile)\n";
  }
  for (const std::string& note : findings.notes) std::cout << note << "\n";
  return exit_ok;
}

}  // namespace program_executor::daemon
