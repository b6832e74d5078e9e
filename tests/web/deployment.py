"""A real deployment for one web test: `program-executor run` and
`program-executor serve` on one configuration of the test's own.

The broker is PE_TEST_AMQP_URL (default amqp://guest:guest@127.0.0.1:5672/);
the database is PE_TEST_DATABASE (sqlite3, postgresql, mysql or odbc; default
sqlite3, a file in the test's directory) reached with
PE_TEST_DATABASE_CONNECTION, as in the C++ integration suite (.ci/test,
tests/integration/daemon_server_database.hpp). Each deployment has a queue and
a table of its own, so tests run in parallel on one broker and one server, and
removes them when it stops.

Locally a missing service skips the test loudly (exit 77, which CTest reports
as skipped); under CI=true it fails it: a skipped suite proves nothing.
"""

import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

SKIP = 77  # SKIP_RETURN_CODE of the CTest tests

SOURCE_DIR = Path(__file__).resolve().parents[2]


def running_in_ci():
    return os.environ.get("CI") == "true"


def skip_or_fail(why):
    """A missing prerequisite: under CI a failure, locally a loud skip."""
    if running_in_ci():
        print(f"FAILED: {why}", file=sys.stderr, flush=True)
        sys.exit(1)
    print(f"SKIPPED: {why}", file=sys.stderr, flush=True)
    sys.exit(SKIP)


def add_arguments(parser):
    """--binary and --plugin-dir, as CMake passes them (env PE_TEST_BINARY, PE_TEST_PLUGIN_DIR)."""
    parser.add_argument("--binary", default=os.environ.get(
        "PE_TEST_BINARY", str(SOURCE_DIR / "build/test/daemon/program-executor")),
        help="the program-executor binary")
    parser.add_argument("--plugin-dir", default=os.environ.get(
        "PE_TEST_PLUGIN_DIR", str(SOURCE_DIR / "build/test/plugins/demo")),
        help="the demo plugin's directory")


def amqp_url():
    return os.environ.get("PE_TEST_AMQP_URL") or "amqp://guest:guest@127.0.0.1:5672/"


def _tcp_reachable(host, port, timeout=5.0):
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def require_broker():
    url = urllib.parse.urlsplit(amqp_url())
    host = url.hostname or "127.0.0.1"
    port = url.port or (5671 if url.scheme == "amqps" else 5672)
    if not _tcp_reachable(host, port):
        skip_or_fail(f"RabbitMQ is not reachable at {host}:{port} (set PE_TEST_AMQP_URL); "
                     "web test not run")


def free_port():
    """A loopback port free right now (the kernel's pick)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def unique_name(prefix):
    return f"{prefix}_{os.getpid()}_{secrets.token_hex(3)}"


def yaml_quoted(text):
    """A YAML single-quoted scalar; '$${' keeps the loader from expanding '${'."""
    return "'" + text.replace("'", "''").replace("${", "$${") + "'"


def _semicolon_fields(text):
    """ODBC 'KEY=value;KEY={value}' as a dict with upper-case keys."""
    fields = {}
    for part in re.findall(r"([^=;]+)=(\{[^}]*\}|[^;]*)", text):
        key, value = part
        fields[key.strip().upper()] = value.strip().strip("{}")
    return fields


def _space_fields(text):
    """libpq/SOCI 'key=value key=value' as a dict."""
    return dict(re.findall(r"(\w+)=('(?:[^'\\]|\\.)*'|\S+)", text))


class Deployment:
    """Start with `with Deployment(binary, plugin_dir) as d:`; `d.url(path)`,
    `d.operator_token`, `d.viewer_token`. Stopping checks that both processes
    exit 0 after SIGTERM (sanitizer reports included) and raises otherwise."""

    def __init__(self, binary, plugin_dir, name="web", max_body_bytes=65536, workers=4):
        self.binary = str(Path(binary).resolve())
        self.plugin_dir = str(Path(plugin_dir).resolve())
        if not os.access(self.binary, os.X_OK):
            raise RuntimeError(f"{self.binary}: not an executable (build first, or pass --binary)")
        if not Path(self.plugin_dir).is_dir():
            raise RuntimeError(f"{self.plugin_dir}: no such plugin directory (pass --plugin-dir)")
        require_broker()
        self.backend = os.environ.get("PE_TEST_DATABASE") or "sqlite3"
        self.dir = Path(tempfile.mkdtemp(prefix="pe-web-test-"))
        self.queue = unique_name(f"pe-{name}")
        self.table = unique_name(f"pe_{name}").replace("-", "_")
        if self.backend == "sqlite3":
            self.connection = f"db={self.dir / 'programs.db'}"
        else:
            self.connection = os.environ.get("PE_TEST_DATABASE_CONNECTION", "")
            if not self.connection:
                skip_or_fail(f"PE_TEST_DATABASE={self.backend} needs PE_TEST_DATABASE_CONNECTION "
                             "(see .ci/databases)")
        self.port = free_port()
        self.max_body_bytes = max_body_bytes
        self.operator_token = "op-" + secrets.token_hex(20)
        self.viewer_token = "view-" + secrets.token_hex(20)
        self.config = self.dir / "config.yaml"
        self.daemon = None
        self.server = None
        self._write_files(workers)

    # ---- files --------------------------------------------------------------
    def _write_files(self, workers):
        operator_file = self.dir / "operator-tokens"
        viewer_file = self.dir / "viewer-tokens"
        # A comment and a blank line, which the token files may hold.
        operator_file.write_text(f"# operators of {self.queue}\n\n{self.operator_token}\n")
        viewer_file.write_text(f"# viewers of {self.queue}\n{self.viewer_token}\n")
        os.chmod(operator_file, 0o600)
        os.chmod(viewer_file, 0o600)
        self.config.write_text(
            "amqp:\n"
            f"  url: {yaml_quoted(amqp_url())}\n"
            f"  queue: {self.queue}\n"
            "  heartbeat_seconds: 5\n"
            "database:\n"
            f"  backend: {self.backend}\n"
            f"  connection: {yaml_quoted(self.connection)}\n"
            f"  table: {self.table}\n"
            "plugins:\n"
            f"  directory: {yaml_quoted(self.plugin_dir)}\n"
            f"workers: {workers}\n"
            "shutdown_grace_seconds: 5\n"
            "log:\n"
            "  level: debug\n"
            "  format: json\n"
            "metrics:\n"
            "  listen: \"\"\n"  # parallel tests would all want port 9464
            "web:\n"
            f"  listen: \"127.0.0.1:{self.port}\"\n"
            f"  operator_token_file: {yaml_quoted(str(operator_file))}\n"
            f"  viewer_token_file: {yaml_quoted(str(viewer_file))}\n"
            f"  max_body_bytes: {self.max_body_bytes}\n")

    # ---- processes ----------------------------------------------------------
    def _spawn(self, command, log_name):
        log = open(self.dir / log_name, "ab")
        try:
            return subprocess.Popen([self.binary, command, "-c", str(self.config)],
                                    stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                    cwd=self.dir)
        finally:
            log.close()

    def log(self, name):
        path = self.dir / name
        return path.read_text(errors="replace") if path.exists() else ""

    def excerpt(self, log_name):
        """A sanitizer report's first lines if the log has one, else its last 40 lines."""
        lines = self.log(log_name).splitlines()
        for i, line in enumerate(lines):
            if re.search(r"ERROR: (Address|Leak|Thread)Sanitizer|runtime error:", line):
                return "\n".join(lines[max(i - 3, 0):i + 30])
        return "\n".join(lines[-40:])

    def _fail_start(self, what, log_name):
        tail = self.excerpt(log_name)
        self.stop(check=False)
        raise RuntimeError(f"{what}; the last lines of {log_name}:\n{tail}")

    def start(self):
        # `run` first: it creates (migrates) the table the server reads.
        self.daemon = self._spawn("run", "daemon.log")
        deadline = time.monotonic() + 60
        while '"daemon.started"' not in self.log("daemon.log"):
            if self.daemon.poll() is not None:
                self._fail_start(f"program-executor run exited with {self.daemon.returncode}",
                                 "daemon.log")
            if time.monotonic() > deadline:
                self._fail_start("program-executor run did not log daemon.started in 60 s",
                                 "daemon.log")
            time.sleep(0.1)
        self.server = self._spawn("serve", "serve.log")
        import requests  # only here: deployment.py itself needs no third-party module
        deadline = time.monotonic() + 60
        while True:
            if self.server.poll() is not None:
                self._fail_start(f"program-executor serve exited with {self.server.returncode}",
                                 "serve.log")
            try:
                if requests.get(self.url("/api/v1/health"), timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                self._fail_start("GET /api/v1/health did not answer 200 in 60 s", "serve.log")
            time.sleep(0.1)
        return self

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"

    def cli(self, command, *args):
        """`program-executor <command> -c <config> args...`; the completed process."""
        return subprocess.run([self.binary, command, "-c", str(self.config), *args],
                              capture_output=True, text=True, timeout=60, cwd=self.dir)

    def _stop_process(self, process, name, log_name, problems):
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
                problems.append(f"{name} did not exit within 30 s of SIGTERM (killed)")
                return
        if process.returncode != 0:
            tail = self.excerpt(log_name)
            problems.append(f"{name} exited with {process.returncode}; the last lines of "
                            f"{log_name}:\n{tail}")

    def stop(self, check=True):
        """SIGTERM to both, waits, removes the queue, the table and the directory
        (PE_TEST_KEEP_DIRS=1 keeps the directory: config, tokens, logs)."""
        problems = []
        self._stop_process(self.server, "program-executor serve", "serve.log", problems)
        self._stop_process(self.daemon, "program-executor run", "daemon.log", problems)
        self.server = self.daemon = None
        self._drop_queues()
        self._drop_tables()
        if os.environ.get("PE_TEST_KEEP_DIRS") == "1" or (problems and check):
            print(f"kept {self.dir}", file=sys.stderr)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)
        if problems and check:
            raise RuntimeError("\n".join(problems))

    def __enter__(self):
        return self.start()

    def __exit__(self, kind, value, traceback):
        # A failing test's own exception wins over a failing stop.
        self.stop(check=kind is None)
        return False

    # ---- cleanup ------------------------------------------------------------
    def _drop_queues(self):
        """Deletes the test's queues with rabbitmqctl when the broker is this host's."""
        url = urllib.parse.urlsplit(amqp_url())
        if (url.hostname or "127.0.0.1") not in ("127.0.0.1", "localhost", "::1"):
            return
        rabbitmqctl = shutil.which("rabbitmqctl")
        if rabbitmqctl is None:
            return
        vhost = urllib.parse.unquote(url.path[1:]) if len(url.path) > 1 else "/"
        jobs = [subprocess.Popen([rabbitmqctl, "-q", "-p", vhost, "delete_queue", queue],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                for queue in (self.queue, self.queue + "-retry-1000", self.queue + "-parked")]
        for job in jobs:
            try:
                job.wait(timeout=30)
            except subprocess.TimeoutExpired:
                job.kill()

    def _drop_tables(self):
        """Drops the test's tables on a server database (a SQLite file goes with the directory)."""
        tables = [self.table, self.table + "_schema_version", self.table + "_throughput",
                  self.table + "_attempts"]
        statement = "".join(f"DROP TABLE IF EXISTS {t};" for t in tables)
        try:
            if self.backend == "postgresql":
                # SOCI's PostgreSQL connection string is libpq's (key=value or a URL).
                command = ["psql", "-q", "-X", self.connection, "-c", statement]
                env = None
            elif self.backend == "odbc":
                f = _semicolon_fields(self.connection)
                conninfo = (f"host={f.get('SERVER', '127.0.0.1')} port={f.get('PORT', '5432')} "
                            f"dbname={f.get('DATABASE', '')} user={f.get('UID', '')} "
                            "connect_timeout=5")
                command = ["psql", "-q", "-X", conninfo, "-c", statement]
                env = dict(os.environ, PGPASSWORD=f.get("PWD", ""))
            elif self.backend == "mysql":
                f = {k: v.strip("'") for k, v in _space_fields(self.connection).items()}
                command = ["mariadb", "--no-defaults", f"--host={f.get('host', '127.0.0.1')}",
                           f"--port={f.get('port', '3306')}", f"--user={f.get('user', '')}",
                           f.get("db", f.get("dbname", "")), "-e", statement]
                env = dict(os.environ, MYSQL_PWD=f.get("password", ""))
            else:
                return
            if shutil.which(command[0]) is None:
                print(f"note: {command[0]} not found; tables {self.table}* left behind",
                      file=sys.stderr)
                return
            subprocess.run(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           timeout=30, check=False)
        except (OSError, subprocess.SubprocessError):
            pass
