// The unit's environment file as the operator's commands read it (issue 19,
// item 1): systemd's EnvironmentFile= syntax, and where the units keep it.
#include <catch2/catch.hpp>

#include "program_executor/config/environment_file.hpp"

namespace cfg = program_executor::config;
using Assignments = cfg::EnvironmentAssignments;

TEST_CASE("environment files are read as systemd reads them", "[config][environment_file]") {
  CHECK(cfg::parse_environment_file("PE_AMQP_PASSWORD=s3cr3t\n") ==
        Assignments{{"PE_AMQP_PASSWORD", "s3cr3t"}});
  CHECK(cfg::parse_environment_file("# comment\n; other comment\n\n  A = one two  \nB=\n") ==
        Assignments{{"A", "one two"}, {"B", ""}});
  CHECK(cfg::parse_environment_file("A='it''s' \nB=\"say \\\"hi\\\" \"\nC=a\\ b\\\\\n") ==
        Assignments{{"A", "its"}, {"B", "say \"hi\" "}, {"C", "a b\\"}});
  // A printf '%s\n' file written on Windows, and a value continued on the next line.
  CHECK(cfg::parse_environment_file("A=x\r\nB=first\\\nsecond\n") ==
        Assignments{{"A", "x"}, {"B", "firstsecond"}});
  // Not assignments: ignored, as systemd ignores them.
  CHECK(cfg::parse_environment_file("export A=1\n9A=2\nnot a line\nOK=3") ==
        Assignments{{"OK", "3"}});
  // A '#' inside a value is part of it.
  CHECK(cfg::parse_environment_file("P=a#b\n") == Assignments{{"P", "a#b"}});
}

TEST_CASE("the environment file of a config is the one its unit reads",
          "[config][environment_file]") {
  CHECK(cfg::unit_environment_file("/etc/program-executor/config.yaml") ==
        "/etc/program-executor/environment");
  CHECK(cfg::unit_environment_file("/etc/program-executor/exports.yaml") ==
        "/etc/program-executor/exports.environment");
}
