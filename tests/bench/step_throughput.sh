#!/usr/bin/env bash
# Step throughput per database backend: runs pe-bench (tests/bench, see
# docs/performance.md) once per backend with the same options, each printing
# the daemon's steps/s beside the floor of that broker and database.
# A benchmark, not a test.
#
# Usage: tests/bench/step_throughput.sh [--build DIR] [--backends LIST] [pe-bench options...]
#   --build DIR        a Release build directory holding tests/bench/pe-bench
#                      (default build/bench)
#   --backends "..."   default "sqlite3 postgresql mysql"
#   anything else is passed to pe-bench, e.g. --programs 2000 --workers 2
# Needs RabbitMQ (PE_TEST_AMQP_URL, default amqp://guest:guest@127.0.0.1:5672/)
# and, for the server backends, `bash .ci/databases` (its env file is read).
set -euo pipefail
cd "$(dirname "$0")/../.."

build=build/bench
backends="sqlite3 postgresql mysql"
args=()
while (($#)); do
  case $1 in
    --build) build=$2; shift 2 ;;
    --backends) backends=$2; shift 2 ;;
    *) args+=("$1"); shift ;;
  esac
done

bench=$build/tests/bench/pe-bench
if [[ ! -x $bench ]]; then
  echo "step_throughput: no $bench; build it first:" >&2
  echo "  cmake -S . -B $build -G Ninja -DCMAKE_BUILD_TYPE=Release && ninja -C $build pe-bench" >&2
  exit 1
fi
env_file=${PE_DB_DIR:-/var/tmp/pe-databases}/env
# shellcheck disable=SC1090
[[ -f $env_file ]] && source "$env_file"

failed=()
for backend in $backends; do
  "$bench" --backend "$backend" "${args[@]}" || failed+=("$backend")
  echo
done
if ((${#failed[@]})); then
  echo "step_throughput: pe-bench failed on: ${failed[*]}" >&2
  exit 1
fi
