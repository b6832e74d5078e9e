#!/usr/bin/env bash
# Step throughput of the real daemon per database backend: creates N programs
# of M demo.count steps (each step claims the row, writes job data in a
# transaction, publishes the next step and advances the row) while no daemon
# runs, then starts one daemon with W worker threads and measures from its
# first job.started to its last program.finished. A benchmark, not a test.
#
# Usage: tests/bench/step_throughput.sh [options]
#   --build DIR        build directory with daemon/program-executor and plugins/demo
#                      (default build/bench; build it with -DCMAKE_BUILD_TYPE=Release)
#   --backends "..."   default "sqlite3 postgresql mysql odbc"
#   --workers "..."    worker threads per run, default "1 2"
#   --programs N       default 200
#   --steps M          default 10
# Needs RabbitMQ (PE_TEST_AMQP_URL, default amqp://guest:guest@127.0.0.1:5672/)
# and, for the server backends, `bash .ci/databases` (its env file is read).
set -euo pipefail
cd "$(dirname "$0")/../.."

build=build/bench
backends="sqlite3 postgresql mysql odbc"
workers_list="1 2"
programs=200
steps=10
while (($#)); do
  case $1 in
    --build) build=$2; shift 2 ;;
    --backends) backends=$2; shift 2 ;;
    --workers) workers_list=$2; shift 2 ;;
    --programs) programs=$2; shift 2 ;;
    --steps) steps=$2; shift 2 ;;
    *) echo "usage: $0 [--build DIR] [--backends LIST] [--workers LIST] [--programs N] [--steps M]" >&2; exit 2 ;;
  esac
done

daemon=$build/daemon/program-executor
plugins=$build/plugins/demo
[[ -x $daemon ]] || { echo "bench: no $daemon; build first" >&2; exit 1; }
amqp_url=${PE_TEST_AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/}
env_file=${PE_DB_DIR:-/var/tmp/pe-databases}/env
# shellcheck disable=SC1090
[[ -f $env_file ]] && source "$env_file"

jobs=$(printf 'demo.count,%.0s' $(seq 1 "$steps"))
jobs=${jobs%,}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

seconds_of() { date -u -d "$1" +%s.%N; }

# Drops a benchmark table (and its schema version table) on a server backend.
drop_tables() {
  local backend=$1 connection=$2 table=$3
  case $backend in
    postgresql | odbc)
      psql -X -q "${PE_TEST_POSTGRESQL_CONNECTION:-$connection}" \
        -c "DROP TABLE IF EXISTS \"$table\", \"${table}_schema_version\"" >/dev/null 2>&1 || true ;;
    mysql)
      local host port db user password
      host=$(sed -n 's/.*host=\([^ ]*\).*/\1/p' <<< "$connection")
      port=$(sed -n 's/.*port=\([^ ]*\).*/\1/p' <<< "$connection")
      db=$(sed -n 's/.*db=\([^ ]*\).*/\1/p' <<< "$connection")
      user=$(sed -n 's/.*user=\([^ ]*\).*/\1/p' <<< "$connection")
      password=$(sed -n 's/.*password=\([^ ]*\).*/\1/p' <<< "$connection")
      mariadb --no-defaults -h "$host" -P "${port:-3306}" -u "$user" -p"$password" "$db" \
        -e "DROP TABLE IF EXISTS \`$table\`, \`${table}_schema_version\`" >/dev/null 2>&1 || true ;;
  esac
}

printf '%-11s %7s %9s %7s %9s %10s\n' backend workers programs steps seconds "steps/s"
for backend in $backends; do
  case $backend in
    sqlite3) connection="db=$work/programs.db" ;;
    postgresql) connection=${PE_TEST_POSTGRESQL_CONNECTION:?run bash .ci/databases first} ;;
    mysql) connection=${PE_TEST_MYSQL_CONNECTION:?run bash .ci/databases first} ;;
    odbc) connection=${PE_TEST_ODBC_CONNECTION:?run bash .ci/databases first} ;;
    *) echo "bench: unknown backend $backend" >&2; exit 2 ;;
  esac
  for workers in $workers_list; do
    name=pe_bench_${backend}_${workers}_$$
    queue=${name//_/-}
    config=$work/$name.yaml
    log=$work/$name.log
    rm -f "$work/programs.db"*
    cat > "$config" <<EOF
amqp:
  url: "$amqp_url"
  queue: $queue
database:
  backend: $backend
  connection: '${connection//\'/\'\'}'
  table: $name
plugins:
  directory: $plugins
workers: $workers
log:
  level: info
  format: json
metrics:
  listen: ""
EOF
    drop_tables "$backend" "$connection" "$name"
    "$daemon" migrate -c "$config" >/dev/null
    # Created while no daemon runs: the queue holds every first step.
    seq 1 "$programs" | xargs -P 4 -I{} "$daemon" create -c "$config" --jobs "$jobs" >/dev/null
    : > "$log"
    "$daemon" run -c "$config" > "$log" 2>&1 &
    pid=$!
    deadline=$((SECONDS + 900))
    while (($(grep -c '"event":"program.finished"' "$log" || true) < programs)); do
      if ((SECONDS > deadline)) || ! kill -0 "$pid" 2>/dev/null; then
        echo "bench: $backend/$workers did not finish; see $log" >&2
        kill "$pid" 2>/dev/null || true
        cp "$log" /tmp/ && exit 1
      fi
      sleep 0.2
    done
    kill -TERM "$pid"
    wait "$pid" || true
    first=$(grep -m1 '"event":"job.started"' "$log" | sed 's/.*"ts":"\([^"]*\)".*/\1/')
    last=$(grep '"event":"program.finished"' "$log" | tail -1 | sed 's/.*"ts":"\([^"]*\)".*/\1/')
    total=$((programs * steps))
    awk -v b="$backend" -v w="$workers" -v p="$programs" -v t="$total" \
      -v first="$(seconds_of "$first")" -v last="$(seconds_of "$last")" \
      'BEGIN { e = last - first; printf "%-11s %7s %9s %7s %9.2f %10.0f\n", b, w, p, t, e, t / e }'
    echo "$backend $workers $programs $total $first $last" >> "${PE_BENCH_RESULTS:-/dev/null}"
    drop_tables "$backend" "$connection" "$name"
    for q in $(rabbitmqctl -q list_queues name 2>/dev/null | grep "^$queue" || true); do
      rabbitmqctl -q delete_queue "$q" >/dev/null 2>&1 || true
    done
  done
done
