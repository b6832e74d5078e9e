#!/usr/bin/env python3
"""Every endpoint of docs/api.md over real HTTP against a real deployment
(deployment.py), every answer checked against core/src/web/openapi.json:
the status is one the operation documents, the content type is the one
documented for it, the body validates (JSON Schema 2020-12, $refs resolved in
the document), and documented headers are present. Besides the contract, the
semantics docs/api.md states: paging, state changes, the auth matrix, and that
a refused request changes nothing.

Prints one line per request (`METHOD PATH STATUS`), then every failure; exits
1 on any failure, 77 (skipped) locally when RabbitMQ or a Python module is
missing (under CI=true: 1).

    python3 tests/web/api_contract_test.py --binary build/test/daemon/program-executor \
        --plugin-dir build/test/plugins/demo
"""

import argparse
import json
import re
import secrets
import signal
import sys
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import deployment  # noqa: E402

try:
    import jsonschema
    import requests
except ImportError as e:  # Debian: python3-jsonschema python3-requests
    deployment.skip_or_fail(f"{e.name} is missing (apt-get install python3-jsonschema "
                            "python3-requests)")

OPENAPI = deployment.SOURCE_DIR / "core/src/web/openapi.json"
PROBLEM_PREFIX = "urn:program-executor:problem:"
# docs/api.md, "Errors": the type suffixes each refusal status may carry.
PROBLEM_TYPES = {400: {"invalid-json", "invalid-request"}, 401: {"unauthorized"},
                 403: {"forbidden"}, 404: {"not-found"}, 405: {"method-not-allowed"},
                 409: {"conflict"}, 413: {"payload-too-large"}, 415: {"unsupported-media-type"},
                 422: {"unknown-jobs"}, 503: {"unavailable"}}
UNKNOWN_RUN_ID = "00000000-0000-4000-8000-000000000000"
# What a refused request must leave as it was (lease and update times move on their own).
STABLE_FIELDS = ("runId", "state", "jobs", "step", "currentJob", "error", "createdAt",
                 "finishedAt", "erroredAt", "cancelledAt", "jobData", "programData")

failures = []


def check(condition, message):
    """A soft assertion: recorded, and the test goes on."""
    if not condition:
        failures.append(message)
        print(f"  FAILED: {message}", flush=True)
    return condition


class Contract:
    """openapi.json, and which of its operations and statuses were seen."""

    def __init__(self, path):
        self.doc = json.loads(Path(path).read_text())
        self.routes = []  # (regex, template)
        for template in self.doc["paths"]:
            pattern = "^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + "$"
            self.routes.append((re.compile(pattern), template))
        self.seen = set()  # (method, template, status)

    def template_of(self, path):
        for regex, template in self.routes:
            if regex.match(path):
                return template
        return None

    def schema(self, schema):
        """`schema` made resolvable: the document's components beside it."""
        return {**schema, "components": self.doc["components"]}

    def resolve(self, node):
        while "$ref" in node:
            ref = node["$ref"]
            assert ref.startswith("#/"), ref
            node = self.doc
            for part in ref[2:].split("/"):
                node = node[part]
        return node

    def validate_body(self, schema, body, where):
        validator = jsonschema.Draft202012Validator(self.schema(schema))
        errors = sorted(validator.iter_errors(body), key=lambda e: list(e.absolute_path))
        for error in errors[:5]:
            at = "/".join(str(p) for p in error.absolute_path) or "(body)"
            check(False, f"{where}: {at}: {error.message}")
        return not errors

    def validate(self, method, path, response):
        """Checks `response` against the operation of `method path`."""
        status = response.status_code
        where = f"{method} {path} {status}"
        template = self.template_of(path)
        operation = self.doc["paths"].get(template, {}).get(method.lower()) if template else None
        content_type = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if operation is None:
            # No such route (404) or another method on one (405): a problem too.
            check(status in (404, 405), f"{where}: not an operation of openapi.json, yet "
                                        "neither 404 nor 405")
            check(content_type == "application/problem+json",
                  f"{where}: Content-Type {content_type!r}, expected application/problem+json")
            self.validate_problem(where, status, response)
            return
        documented = operation["responses"]
        if not check(str(status) in documented,
                     f"{where}: status not documented for {method} {template} "
                     f"(documented: {', '.join(documented)}); body: {response.text[:300]}"):
            return
        self.seen.add((method.upper(), template, status))
        spec = self.resolve(documented[str(status)])
        for name, header in spec.get("headers", {}).items():
            value = response.headers.get(name)
            if check(value is not None, f"{where}: header {name} missing"):
                pattern = self.resolve(header.get("schema", {})).get("pattern")
                check(pattern is None or re.search(pattern, value),
                      f"{where}: header {name}: {value!r} does not match {pattern}")
        content = spec.get("content", {})
        if not content:
            return
        check(content_type in content,
              f"{where}: Content-Type {content_type!r}, documented: {', '.join(content)}")
        media = content.get(content_type) or next(iter(content.values()))
        try:
            body = response.json()
        except ValueError:
            check(False, f"{where}: body is not JSON: {response.text[:200]!r}")
            return
        self.validate_body(media["schema"], body, where)
        if status >= 400:
            self.validate_problem(where, status, response)

    def validate_problem(self, where, status, response):
        try:
            body = response.json()
        except ValueError:
            check(False, f"{where}: problem body is not JSON: {response.text[:200]!r}")
            return
        self.validate_body({"$ref": "#/components/schemas/Problem"}, body, where)
        if isinstance(body, dict):
            check(body.get("status") == status, f"{where}: problem status {body.get('status')}")
            kind = str(body.get("type", ""))
            suffix = kind[len(PROBLEM_PREFIX):] if kind.startswith(PROBLEM_PREFIX) else kind
            check(suffix in PROBLEM_TYPES.get(status, set()),
                  f"{where}: problem type {kind!r} is not one docs/api.md gives for {status}")

    def operations(self):
        for template, item in self.doc["paths"].items():
            for method, operation in item.items():
                if method in ("get", "post", "put", "patch", "delete"):
                    yield method.upper(), template, operation


class Api:
    """Requests that print themselves and are checked against the contract."""

    def __init__(self, deploy, contract):
        self.deploy = deploy
        self.contract = contract
        self.session = requests.Session()
        self.operator = deploy.operator_token
        self.viewer = deploy.viewer_token

    def call(self, method, path, expect=None, token=None, problem=None, params=None, json_body=None,
             data=None, headers=None, authorization=None):
        """Sends; prints `METHOD PATH STATUS`; checks the status (`expect`), the
        problem type suffix (`problem`) and the contract; returns the response.
        A success answered otherwise ends the scenario (what follows needs its
        body); a refusal answered otherwise is recorded and the scenario goes on."""
        all_headers = dict(headers or {})
        if authorization is not None:
            all_headers["Authorization"] = authorization
        elif token is not None:
            all_headers["Authorization"] = f"Bearer {token}"
        request = requests.Request(method, self.deploy.url(path), params=params, json=json_body,
                                   data=data, headers=all_headers)
        prepared = self.session.prepare_request(request)
        if data is not None and "Content-Type" not in all_headers:
            prepared.headers.pop("Content-Type", None)
        response = self.session.send(prepared, timeout=30)
        shown = prepared.path_url
        print(f"{method} {shown} {response.status_code}", flush=True)
        where = f"{method} {shown}"
        if expect is not None:
            check(response.status_code == expect,
                  f"{where}: status {response.status_code}, expected {expect}; "
                  f"body: {response.text[:300]}")
        self.contract.validate(method, path, response)
        if expect is not None and expect < 400 and response.status_code != expect:
            raise AssertionError(f"{where}: {response.status_code} instead of {expect}; "
                                 "the scenario cannot go on")
        if problem is not None and response.status_code >= 400:
            try:
                kind = response.json().get("type")
            except (ValueError, AttributeError):
                kind = None
            check(kind == PROBLEM_PREFIX + problem,
                  f"{where}: problem type {kind!r}, expected {PROBLEM_PREFIX + problem}")
        if response.status_code == 401:
            check(response.headers.get("WWW-Authenticate", "").startswith("Bearer"),
                  f"{where}: 401 without WWW-Authenticate: Bearer")
        return response

    # ---- helpers over the API ----------------------------------------------
    def create(self, jobs, program_data=None, job_data=None):
        body = {"jobs": jobs}
        if program_data is not None:
            body["programData"] = program_data
        if job_data is not None:
            body["jobData"] = job_data
        r = self.call("POST", "/api/v1/programs", 201, self.operator, json_body=body)
        run_id = r.json()["runId"]
        check(r.headers.get("Location") == f"/api/v1/programs/{run_id}",
              f"Location {r.headers.get('Location')!r}, expected /api/v1/programs/{run_id}")
        return run_id

    def get(self, run_id):
        return self.call("GET", f"/api/v1/programs/{run_id}", 200, self.viewer).json()

    def wait_for(self, run_id, states, timeout=60):
        """Polls the program until its state is one of `states`."""
        deadline = time.monotonic() + timeout
        while True:
            program = self.get(run_id)
            if program["state"] in states:
                return program
            if time.monotonic() > deadline:
                raise AssertionError(f"program {run_id} still {program['state']} after {timeout} s "
                                     f"(waiting for {'/'.join(states)}): {program}")
            time.sleep(0.3)

    def wait_for_step(self, run_id, step, timeout=60):
        """Polls the program (often: the step may be short) until it stands at `step`."""
        deadline = time.monotonic() + timeout
        while True:
            program = self.get(run_id)
            if program["step"] == step and program["state"] == "running":
                return program
            if time.monotonic() > deadline:
                raise AssertionError(f"program {run_id} not running at step {step} after "
                                     f"{timeout} s: {program}")
            time.sleep(0.02)

    def wait_until_claimed_step_done(self, run_id, timeout=60):
        """Waits until no worker holds a claim on the program (its running step ended)."""
        deadline = time.monotonic() + timeout
        while True:
            program = self.get(run_id)
            if program["leaseOwner"] is None:
                return program
            if time.monotonic() > deadline:
                raise AssertionError(f"program {run_id}: a worker still holds it after {timeout} s")
            time.sleep(0.3)

    def wait_until_none_running(self, timeout=90):
        """Polls until no program is running (so counts stand still)."""
        deadline = time.monotonic() + timeout
        while True:
            r = self.call("GET", "/api/v1/programs", 200, self.viewer,
                          params={"state": "running", "limit": 500})
            running = [p["runId"] for p in r.json()["programs"]]
            if not running:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"still running after {timeout} s: {running}")
            time.sleep(0.5)

    def all_programs(self):
        r = self.call("GET", "/api/v1/programs", 200, self.viewer, params={"limit": 500})
        return r.json()["programs"]

    def totals(self):
        """(programs listed, their states by run id, counts by state as the
        stats give them once they agree with the list)."""
        programs = self.all_programs()
        counts = {s: sum(1 for p in programs if p["state"] == s)
                  for s in ("running", "finished", "errored", "cancelled")}
        self.wait_for_stats(lambda stats: stats["counts"] == counts,
                            f"the counts of the list, {counts}")
        return len(programs), {p["runId"]: p["state"] for p in programs}, counts

    def wait_for_stats(self, predicate, what, timeout=15):
        """Polls GET /api/v1/stats until `predicate(stats)`: the server may
        answer from a cache a few seconds old (docs/api.md is silent on it)."""
        deadline = time.monotonic() + timeout
        while True:
            stats = self.call("GET", "/api/v1/stats", 200, self.viewer).json()
            if predicate(stats):
                return stats
            if time.monotonic() > deadline:
                check(False, f"GET /api/v1/stats: not {what} after {timeout} s: {stats['counts']}, "
                             f"recentErrors {[p['runId'] for p in stats['recentErrors']]}")
                return stats
            time.sleep(0.5)


def stable(program):
    return {k: program.get(k) for k in STABLE_FIELDS}


def unchanged(api, run_id, before, what):
    after = api.get(run_id)
    check(stable(after) == stable(before),
          f"{what} changed program {run_id}: {stable(before)} -> {stable(after)}")


# ---- the scenarios ----------------------------------------------------------

def public_routes(api, state):
    r = api.call("GET", "/api/v1/health", 200)
    check(r.json() == {"status": "ok"}, f"health: {r.text}")
    r = api.call("GET", "/api/v1/openapi.json", 200)
    check(r.json() == api.contract.doc,
          "GET /api/v1/openapi.json is not core/src/web/openapi.json")


def jobs_and_empty_stats(api, state):
    r = api.call("GET", "/api/v1/jobs", 200, api.viewer)
    jobs = {job["name"]: job["plugin"] for job in r.json()["jobs"]}
    for name in ("demo.noop", "demo.sleep", "demo.fail", "demo.count", "demo.flaky"):
        check(name in jobs, f"GET /api/v1/jobs: {name} missing: {sorted(jobs)}")
    check(all(p.endswith(".so") for p in jobs.values()), f"GET /api/v1/jobs: plugins {jobs}")
    api.call("GET", "/api/v1/jobs", 200, api.operator)
    r = api.call("GET", "/api/v1/stats", 200, api.viewer)
    stats = r.json()
    check(stats["counts"] == {"running": 0, "finished": 0, "errored": 0, "cancelled": 0},
          f"stats of an empty table: {stats['counts']}")
    check(stats["recentErrors"] == [], f"recentErrors of an empty table: {stats['recentErrors']}")
    minutes = [m["minute"] for m in stats["stepsPerMinute"]]
    check(minutes == sorted(minutes) and len(set(minutes)) == len(minutes),
          f"stepsPerMinute not oldest first, one per minute: {minutes[:3]}...")


def create_get_finish(api, state):
    run_id = api.create(["demo.count", "demo.noop"], program_data={"day": "2026-12-06"},
                        job_data={"demo.count": {"runs": 10}})
    program = api.get(run_id)
    check(program["runId"] == run_id, f"runId {program['runId']}")
    check(program["jobs"] == ["demo.count", "demo.noop"], f"jobs {program['jobs']}")
    check(program["programData"] == {"day": "2026-12-06"}, f"programData {program['programData']}")
    check(program["state"] in ("running", "finished"), f"a new program is {program['state']}")
    program = api.wait_for(run_id, ["finished", "errored"])
    check(program["state"] == "finished", f"{run_id} ended {program['state']}: {program['error']}")
    check(program["finishedAt"] is not None and program["currentJob"] is None,
          f"a finished program: finishedAt {program['finishedAt']}, currentJob "
          f"{program['currentJob']}")
    check(program["jobData"].get("demo.count", {}).get("runs") == 11,
          f"jobData after demo.count ran once on runs=10: {program['jobData']}")
    state["count_program"] = run_id


def cancel_and_resume(api, state):
    # A program that stays running a while: demo.sleep (interruptible, so a
    # stopping daemon hands it back at once).
    sleeper = api.create(["demo.noop", "demo.sleep"],
                         job_data={"demo.sleep": {"ms": 3000, "interruptible": True}})
    state["sleeper"] = sleeper
    # Compared before and after a refused resume: taken once the program sits
    # in its 3 s sleep, so the daemon's own progress (demo.noop to demo.sleep)
    # cannot pass for a change the refusal made.
    running = api.wait_for_step(sleeper, 1)
    check(running["state"] == "running", f"{sleeper} is {running['state']}, expected running")
    check(running["currentJob"] == running["jobs"][running["step"]],
          f"currentJob {running['currentJob']}, step {running['step']}")
    # Resume of a running program: 409, nothing changed.
    api.call("POST", f"/api/v1/programs/{sleeper}/resume", 409, api.operator, problem="conflict")
    unchanged(api, sleeper, running, "resume of a running program")
    # Cancel: 200 the program, cancelled.
    r = api.call("POST", f"/api/v1/programs/{sleeper}/cancel", 200, api.operator)
    cancelled = r.json()
    check(cancelled["state"] == "cancelled", f"cancel answered state {cancelled['state']}")
    check(cancelled["cancelledAt"] is not None and cancelled["erroredAt"] is not None,
          f"cancelled: cancelledAt {cancelled['cancelledAt']}, erroredAt {cancelled['erroredAt']}")
    check(cancelled["error"] == "cancelled", f"cancelled: error {cancelled['error']!r}")
    # Again: 200, nothing changes.
    r = api.call("POST", f"/api/v1/programs/{sleeper}/cancel", 200, api.operator)
    again = r.json()
    check(stable(again) == stable(cancelled), f"a second cancel changed it: {stable(again)}")
    # The step that was running ends; the program stays cancelled.
    after = api.wait_until_claimed_step_done(sleeper)
    check(after["state"] == "cancelled", f"after its step ended: {after['state']}")
    # fromStep out of range, of the wrong type: 400, nothing changed.
    for body in ({"fromStep": 3}, {"fromStep": 99}, {"fromStep": 0}, {"fromStep": -1},
                 {"fromStep": "2"}, {"fromStep": 1.5}):
        api.call("POST", f"/api/v1/programs/{sleeper}/resume", 400, api.operator,
                 problem="invalid-request", json_body=body)
    unchanged(api, sleeper, after, "a refused resume")
    # Resume of the cancelled program: 200, running; then it finishes.
    r = api.call("POST", f"/api/v1/programs/{sleeper}/resume", 200, api.operator,
                 json_body={"fromStep": 2})
    resumed = r.json()
    check(resumed["state"] == "running", f"resume answered state {resumed['state']}")
    check(resumed["cancelledAt"] is None and resumed["erroredAt"] is None
          and resumed["error"] is None,
          f"resumed: cancelledAt {resumed['cancelledAt']}, erroredAt {resumed['erroredAt']}, "
          f"error {resumed['error']!r}")
    check(resumed["step"] == 1 and resumed["currentJob"] == "demo.sleep",
          f"resumed fromStep 2: step {resumed['step']}, currentJob {resumed['currentJob']}")
    check(resumed["jobData"] == after["jobData"], "resume did not keep the job data: "
                                                  f"{after['jobData']} -> {resumed['jobData']}")
    finished = api.wait_for(sleeper, ["finished", "errored"])
    check(finished["state"] == "finished", f"the resumed program ended {finished['state']}")
    # A finished program: cancel 409, resume 409, nothing changed.
    api.call("POST", f"/api/v1/programs/{sleeper}/cancel", 409, api.operator, problem="conflict")
    api.call("POST", f"/api/v1/programs/{sleeper}/resume", 409, api.operator, problem="conflict")
    unchanged(api, sleeper, finished, "cancel/resume of a finished program")

    # A cancelled program resumed where it stopped (no body) finishes too.
    second = api.create(["demo.sleep", "demo.noop"],
                        job_data={"demo.sleep": {"ms": 1000, "interruptible": True}})
    api.call("POST", f"/api/v1/programs/{second}/cancel", 200, api.operator)
    api.wait_until_claimed_step_done(second)
    r = api.call("POST", f"/api/v1/programs/{second}/resume", 200, api.operator)
    check(r.json()["state"] == "running", f"resume answered {r.json()['state']}")
    check(api.wait_for(second, ["finished", "errored"])["state"] == "finished",
          f"{second} did not finish after its resume")

    # One that stays cancelled, for the list's state filter.
    kept = api.create(["demo.sleep"], job_data={"demo.sleep": {"ms": 5000, "interruptible": True}})
    api.call("POST", f"/api/v1/programs/{kept}/cancel", 200, api.operator)
    state["cancelled"] = kept

    # An errored program: cancel 409; resume past the last step 400; resume 200.
    failing = api.create(["demo.fail"], job_data={"demo.fail": {"message": "boom"}})
    errored = api.wait_for(failing, ["errored", "finished"])
    check(errored["state"] == "errored" and errored["error"] == "boom",
          f"demo.fail: state {errored['state']}, error {errored['error']!r}")
    check(errored["erroredAt"] is not None and errored["cancelledAt"] is None,
          f"errored: erroredAt {errored['erroredAt']}, cancelledAt {errored['cancelledAt']}")
    api.call("POST", f"/api/v1/programs/{failing}/cancel", 409, api.operator, problem="conflict")
    api.call("POST", f"/api/v1/programs/{failing}/resume", 400, api.operator,
             problem="invalid-request", json_body={"fromStep": 2})
    unchanged(api, failing, errored, "refused cancel/resume of an errored program")
    r = api.call("POST", f"/api/v1/programs/{failing}/resume", 200, api.operator,
                 json_body={"fromStep": 1})
    # demo.fail fails at once: by the time the answer is read it may have failed again.
    check(r.json()["state"] in ("running", "errored") and r.json()["step"] == 0,
          f"resume of an errored program: {r.json()['state']}, step {r.json()['step']}")
    again = api.wait_for(failing, ["errored", "finished"])
    check(again["state"] == "errored", f"demo.fail resumed ended {again['state']}")
    state["errored"] = failing
    api.wait_for_stats(lambda stats: [p["runId"] for p in stats["recentErrors"]] == [failing],
                       f"recentErrors == [{failing}] (cancelled ones excluded)")


ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
WORKER = re.compile(r"^.+:\d+:\d+$")  # host:pid:worker


def attempt_history(api, state):
    """GET /programs/{runId}/attempts: a step that fails twice, then the program
    finishes; the answer is what `explain --json` prints for it."""
    run_id = api.create(["demo.flaky", "demo.noop"], job_data={"demo.flaky": {"failures": 2}})
    program = api.wait_for(run_id, ["finished", "errored"])
    check(program["state"] == "finished", f"demo.flaky (2 failures) ended {program['state']}: "
                                          f"{program['error']}")
    r = api.call("GET", f"/api/v1/programs/{run_id}/attempts", 200, api.viewer)
    history = r.json()
    check(history["runId"] == run_id and history["state"] == "finished",
          f"attempts of {run_id}: runId {history['runId']}, state {history['state']}")
    attempts = history["attempts"]
    seen = [(a["step"], a["job"], a["attempt"], a["outcome"], a["error"]) for a in attempts]
    check(seen == [(0, "demo.flaky", 1, "retry", "flaky failure 1 of 2"),
                   (0, "demo.flaky", 2, "retry", "flaky failure 2 of 2"),
                   (0, "demo.flaky", 3, "finished", None),
                   (1, "demo.noop", 1, "finished", None)],
          f"attempts of a step that failed twice, then the next one: {seen}")
    for a in attempts:
        check(ISO_UTC.match(a["startedAt"]) and ISO_UTC.match(a["endedAt"])
              and a["startedAt"] <= a["endedAt"],
              f"attempt {a['step']}/{a['attempt']}: startedAt {a['startedAt']}, endedAt "
              f"{a['endedAt']}")
        check(WORKER.match(a["worker"]), f"attempt {a['step']}/{a['attempt']}: worker "
                                         f"{a['worker']!r} is not host:pid:worker")
    started = [a["startedAt"] for a in attempts]
    check(started == sorted(started), f"attempts not oldest first: {started}")
    # A retry waits for the retry queue (1 s): the next attempt starts after it.
    for before, after in zip(attempts, attempts[1:3]):
        check(after["startedAt"] > before["endedAt"],
              f"attempt {after['attempt']} started {after['startedAt']}, before attempt "
              f"{before['attempt']} ended {before['endedAt']}")
    check(history["reason"].startswith("finished: "), f"reason: {history['reason']!r}")
    # The command line and the API print one document.
    explain = api.deploy.cli("explain", run_id, "--json")
    if check(explain.returncode == 0, f"explain --json exited {explain.returncode}: "
                                      f"{explain.stderr[-500:]}"):
        check(json.loads(explain.stdout) == history,
              f"explain --json differs from the API:\n{explain.stdout}\n{r.text}")
    api.call("GET", f"/api/v1/programs/{run_id}/attempts", 200, api.operator)

    # The errored program of cancel_and_resume: it failed, was resumed, failed again.
    errored = state.get("errored")
    if errored is not None:
        history = api.call("GET", f"/api/v1/programs/{errored}/attempts", 200, api.viewer).json()
        seen = [(a["step"], a["job"], a["attempt"], a["outcome"], a["error"])
                for a in history["attempts"]]
        check(seen == [(0, "demo.fail", 1, "errored", "boom")] * 2,
              f"attempts of a program that errored, was resumed and errored again: {seen}")
        check(history["state"] == "errored" and "boom" in history["reason"],
              f"errored: state {history['state']}, reason {history['reason']!r}")

    # Unknown run id: 404; another method: 405.
    for run in (UNKNOWN_RUN_ID, "no-such-program"):
        api.call("GET", f"/api/v1/programs/{run}/attempts", 404, api.viewer, problem="not-found")
    api.call("POST", f"/api/v1/programs/{run_id}/attempts", 405, api.operator,
             problem="method-not-allowed")


def list_and_paging(api, state):
    # 7 programs of demo.log to page through, and enough others to pass the
    # default limit of 50.
    before = [p["runId"] for p in api.all_programs()]
    paged = [api.create(["demo.log"], program_data={"n": n}) for n in range(7)]
    bulk = [api.create(["demo.noop"]) for _ in range(40)]
    api.wait_until_none_running()
    listed = api.all_programs()
    expected = list(reversed(paged + bulk)) + before  # `before` is newest first already
    check([p["runId"] for p in listed] == expected,
          "GET /api/v1/programs is not every program, newest first: "
          f"{[p['runId'] for p in listed][:5]}..., expected {expected[:5]}...")
    with_log = list(reversed(paged))

    # Keyset paging, limit 2, over >= 5 pages; a program created meanwhile does not shift it.
    pages, cursor, seen = 0, None, []
    while True:
        params = {"job": "demo.log", "limit": 2}
        if cursor is not None:
            params["cursor"] = cursor
        r = api.call("GET", "/api/v1/programs", 200, api.viewer, params=params)
        page = r.json()
        pages += 1
        check(len(page["programs"]) <= 2, f"page {pages}: {len(page['programs'])} programs > limit")
        seen += [p["runId"] for p in page["programs"]]
        check(all(p["jobs"] == ["demo.log"] for p in page["programs"]),
              f"page {pages}: a program without demo.log")
        if pages == 1:
            state["created_while_paging"] = api.create(["demo.log"])
        cursor = page["nextCursor"]
        if cursor is None or pages > 50:
            break
    check(pages == 4, f"{pages} pages of 2 for 7 programs")
    check(seen == with_log, f"paging gave {seen}, expected {with_log}")
    check(state["created_while_paging"] not in seen, "a program created while paging showed up")

    # Filters.
    def run_ids(params):
        r = api.call("GET", "/api/v1/programs", 200, api.viewer, params=params)
        return r.json()["programs"]

    errored = run_ids({"state": "errored"})
    check([p["runId"] for p in errored] == [state["errored"]], f"state=errored: {errored}")
    cancelled = run_ids({"state": "cancelled"})
    check([p["runId"] for p in cancelled] == [state["cancelled"]], f"state=cancelled: {cancelled}")
    finished = run_ids({"state": "finished", "limit": 500})
    check(all(p["state"] == "finished" for p in finished) and
          state["count_program"] in [p["runId"] for p in finished], "state=finished")
    running = run_ids({"state": "running", "limit": 500})
    check(all(p["state"] == "running" for p in running), "state=running lists others")
    fails = run_ids({"job": "demo.fail"})
    check([p["runId"] for p in fails] == [state["errored"]], f"job=demo.fail: {fails}")
    both = run_ids({"job": "demo.count", "state": "finished"})
    check([p["runId"] for p in both] == [state["count_program"]],
          f"job=demo.count&state=finished: {both}")
    check(run_ids({"job": "demo"}) == [], "job=demo matched part of a job name")
    default = api.call("GET", "/api/v1/programs", 200, api.operator).json()
    check(len(listed) + 1 > 50 and len(default["programs"]) == 50
          and default["nextCursor"] is not None,
          f"default limit: {len(default['programs'])} programs of {len(listed) + 1}")
    rest = api.call("GET", "/api/v1/programs", 200, api.operator,
                    params={"cursor": default["nextCursor"]}).json()
    check(len(rest["programs"]) == len(listed) + 1 - 50 and rest["nextCursor"] is None,
          f"the second page of 50: {len(rest['programs'])} programs, "
          f"nextCursor {rest['nextCursor']}")
    one = api.call("GET", "/api/v1/programs", 200, api.viewer, params={"limit": 1}).json()
    check(len(one["programs"]) == 1 and one["nextCursor"] is not None, "limit=1")
    # Bad query parameters: 400.
    for params in ({"limit": 0}, {"limit": 501}, {"limit": "ten"}, {"limit": -5},
                   {"state": "paused"}, {"cursor": "not-a-cursor"}):
        api.call("GET", "/api/v1/programs", 400, api.viewer, params=params,
                 problem="invalid-request")
    api.call("GET", "/api/v1/programs", 200, api.viewer, params={"limit": 500})
    api.wait_until_none_running()


def auth_matrix(api, state):
    api.wait_until_none_running()
    # A program that keeps running while the operator routes are refused.
    long_one = api.create(["demo.sleep"],
                          job_data={"demo.sleep": {"ms": 60000, "interruptible": True}})
    cancelled = state["cancelled"]
    before_total, before_states, before_counts = api.totals()
    running_before = api.get(long_one)
    cancelled_before = api.get(cancelled)
    garbage = "garbage-" + "x" * 32
    viewer_routes = [("GET", "/api/v1/programs", {}), ("GET", f"/api/v1/programs/{long_one}", {}),
                     ("GET", f"/api/v1/programs/{long_one}/attempts", {}),
                     ("GET", "/api/v1/jobs", {}), ("GET", "/api/v1/stats", {})]
    operator_routes = [
        ("POST", "/api/v1/programs", {"json_body": {"jobs": ["demo.noop"]}}),
        ("POST", f"/api/v1/programs/{long_one}/cancel", {}),
        ("POST", f"/api/v1/programs/{cancelled}/resume", {"json_body": {"fromStep": 1}}),
    ]
    for method, path, kwargs in viewer_routes + operator_routes:
        api.call(method, path, 401, problem="unauthorized", **kwargs)
        api.call(method, path, 401, token=garbage, problem="unauthorized", **kwargs)
        api.call(method, path, 401, authorization=f"Basic {api.operator}", problem="unauthorized",
                 **kwargs)
        api.call(method, path, 401, authorization="Bearer", problem="unauthorized", **kwargs)
        # The operator's token with one character changed.
        api.call(method, path, 401, token=api.operator[:-1] + ("0" if api.operator[-1] != "0"
                                                               else "1"),
                 problem="unauthorized", **kwargs)
    for method, path, kwargs in operator_routes:
        api.call(method, path, 403, token=api.viewer, problem="forbidden", **kwargs)
    for method, path, kwargs in viewer_routes:
        api.call(method, path, 200, token=api.viewer, **kwargs)
        api.call(method, path, 200, token=api.operator, **kwargs)
    # Refused: nothing created, cancelled or resumed.
    total, states, counts = api.totals()
    check(total == before_total, f"refused requests created programs: {before_total} -> {total}")
    check(counts == before_counts, f"counts moved: {before_counts} -> {counts}")
    unchanged(api, long_one, running_before, "refused cancels")
    unchanged(api, cancelled, cancelled_before, "refused resumes")
    # The operator may: cancel the long one (the interruptible sleep ends with the daemon).
    r = api.call("POST", f"/api/v1/programs/{long_one}/cancel", 200, api.operator)
    check(r.json()["state"] == "cancelled", f"operator cancel: {r.json()['state']}")
    state["long_one"] = long_one


def wait_for_reload(deploy, reloads_before):
    """Waits until serve.log holds one more web.reloaded event than before."""
    deadline = time.monotonic() + 30
    while deploy.log("serve.log").count('"web.reloaded"') <= reloads_before:
        if time.monotonic() > deadline:
            raise AssertionError("serve did not log web.reloaded within 30 s of SIGHUP")
        time.sleep(0.1)


def reload_tokens(api, state):
    """SIGHUP rereads the token files: a token added is accepted, one removed is
    refused again, the others keep working; serve logs each reload (its log
    level survives reloading the config)."""
    deploy = api.deploy
    operator_file = deploy.dir / "operator-tokens"
    original = operator_file.read_text()
    rotated = "rotated-" + secrets.token_hex(16)
    api.call("GET", "/api/v1/jobs", 401, token=rotated, problem="unauthorized")
    try:
        operator_file.write_text(original + rotated + "\n")
        reloads = deploy.log("serve.log").count('"web.reloaded"')
        deploy.server.send_signal(signal.SIGHUP)
        wait_for_reload(deploy, reloads)
        api.call("GET", "/api/v1/jobs", 200, token=rotated)
        api.call("POST", "/api/v1/programs/" + UNKNOWN_RUN_ID + "/cancel", 404, token=rotated,
                 problem="not-found")  # an operator's token: past the role check
    finally:
        operator_file.write_text(original)
    reloads = deploy.log("serve.log").count('"web.reloaded"')
    deploy.server.send_signal(signal.SIGHUP)
    wait_for_reload(deploy, reloads)
    api.call("GET", "/api/v1/jobs", 401, token=rotated, problem="unauthorized")
    api.call("GET", "/api/v1/jobs", 200, token=api.operator)
    api.call("GET", "/api/v1/jobs", 200, token=api.viewer)


def bad_input(api, state):
    api.wait_until_none_running()
    before_total, before_states, before_counts = api.totals()
    post = "/api/v1/programs"
    json_type = {"Content-Type": "application/json"}
    api.call("POST", post, 400, api.operator, problem="invalid-json", data=b"{not json",
             headers=json_type)
    api.call("POST", post, 400, api.operator, problem="invalid-json", data=b"",
             headers=json_type)
    api.call("POST", post, 400, api.operator, problem="invalid-json",
             data=b'{"jobs": ["demo.noop"]', headers=json_type)
    for body in ([], "demo.noop", 42, None, {}, {"jobs": "demo.noop"}, {"jobs": []},
                 {"jobs": ["demo.noop", 3]}, {"jobs": [None]}, {"jobs": [["demo.noop"]]},
                 {"jobs": {"0": "demo.noop"}}, {"jobs": ["demo.noop"], "programData": []},
                 {"jobs": ["demo.noop"], "programData": "x"},
                 {"jobs": ["demo.noop"], "programData": None},
                 {"jobs": ["demo.noop"], "jobData": 5}, {"jobs": ["demo.noop"], "jobData": []}):
        api.call("POST", post, 400, api.operator, problem="invalid-request",
                 data=json.dumps(body).encode(), headers=json_type)
    # Unknown job: 422, naming it.
    r = api.call("POST", post, 422, api.operator, problem="unknown-jobs",
                 json_body={"jobs": ["demo.noop", "reindex"]})
    if r.status_code == 422:
        check(r.json().get("unknownJobs") == ["reindex"], f"unknownJobs: {r.json()}")
    # Over web.max_body_bytes: 413.
    padding = "x" * (api.deploy.max_body_bytes + 1)
    api.call("POST", post, 413, api.operator, problem="payload-too-large",
             json_body={"jobs": ["demo.noop"], "programData": {"pad": padding}})
    api.call("POST", f"/api/v1/programs/{state['cancelled']}/resume", 413, api.operator,
             problem="payload-too-large", json_body={"fromStep": 1, "pad": padding})
    # Not application/json: 415.
    valid = json.dumps({"jobs": ["demo.noop"]}).encode()
    api.call("POST", post, 415, api.operator, problem="unsupported-media-type", data=valid,
             headers={"Content-Type": "text/plain"})
    api.call("POST", post, 415, api.operator, problem="unsupported-media-type", data=valid,
             headers={"Content-Type": "application/x-www-form-urlencoded"})
    api.call("POST", post, 415, api.operator, problem="unsupported-media-type", data=valid)
    api.call("POST", f"/api/v1/programs/{state['cancelled']}/resume", 415, api.operator,
             problem="unsupported-media-type", data=b'{"fromStep": 1}',
             headers={"Content-Type": "text/plain"})
    api.call("POST", f"/api/v1/programs/{state['cancelled']}/resume", 400, api.operator,
             problem="invalid-json", data=b"{fromStep: 1}", headers=json_type)
    # Unknown run id: 404 on get, cancel, resume.
    for method, path in (("GET", f"/api/v1/programs/{UNKNOWN_RUN_ID}"),
                         ("POST", f"/api/v1/programs/{UNKNOWN_RUN_ID}/cancel"),
                         ("POST", f"/api/v1/programs/{UNKNOWN_RUN_ID}/resume"),
                         ("GET", "/api/v1/programs/no-such-program")):
        api.call(method, path, 404, api.operator, problem="not-found")
    # No such route: 404; a route that exists, another method: 405.
    api.call("GET", "/api/v1/nothing-here", 404, api.operator, problem="not-found")
    api.call("DELETE", post, 405, api.operator, problem="method-not-allowed")
    api.call("GET", f"/api/v1/programs/{state['cancelled']}/cancel", 405, api.operator,
             problem="method-not-allowed")
    api.call("POST", "/api/v1/stats", 405, api.operator, problem="method-not-allowed")
    # Every refusal changed nothing.
    total, states, counts = api.totals()
    check(total == before_total, f"refused requests created programs: {before_total} -> {total}")
    check(states == before_states, "refused requests changed program states")
    check(counts == before_counts, f"counts moved: {before_counts} -> {counts}")
    # application/json with a charset is JSON.
    r = api.call("POST", post, 201, api.operator, data=valid,
                 headers={"Content-Type": "application/json; charset=utf-8"})
    if r.status_code == 201:
        api.wait_for(r.json()["runId"], ["finished", "errored"])


def final_stats(api, state):
    api.wait_until_none_running()
    api.totals()  # the counts agree with the list
    listed = api.all_programs()
    errored = [p["runId"] for p in listed if p["state"] == "errored"][:10]
    stats = api.wait_for_stats(lambda s: [p["runId"] for p in s["recentErrors"]] == errored,
                               f"recentErrors == the list's errored {errored}")
    api.call("GET", "/api/v1/stats", 200, api.operator)
    # The daemon records its steps every few seconds: they show up in the last hour.
    deadline = time.monotonic() + 60
    while sum(m["steps"] for m in stats["stepsPerMinute"]) == 0 and time.monotonic() < deadline:
        time.sleep(1)
        stats = api.call("GET", "/api/v1/stats", 200, api.viewer).json()
    steps = sum(m["steps"] for m in stats["stepsPerMinute"])
    check(steps > 0, "stepsPerMinute stayed 0 though the daemon ran steps")
    api.call("GET", "/api/v1/health", 200)


SCENARIOS = [public_routes, jobs_and_empty_stats, create_get_finish, cancel_and_resume,
             attempt_history, list_and_paging, auth_matrix, reload_tokens, bad_input, final_stats]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    deployment.add_arguments(parser)
    args = parser.parse_args()
    contract = Contract(OPENAPI)
    state = {}
    started = False
    try:
        with deployment.Deployment(args.binary, args.plugin_dir, name="webapi") as deploy:
            started = True
            api = Api(deploy, contract)
            for scenario in SCENARIOS:
                print(f"# {scenario.__name__}", flush=True)
                try:
                    scenario(api, state)
                except (AssertionError, requests.RequestException) as e:
                    failures.append(f"{scenario.__name__}: {e}")
                    print(f"  FAILED, scenario ended: {e}", flush=True)
                except Exception as e:  # noqa: BLE001 - one scenario must not hide the next
                    failures.append(f"{scenario.__name__}: {type(e).__name__}: {e}")
                    traceback.print_exc()
    except Exception as e:  # noqa: BLE001 - the deployment did not start or stop cleanly
        failures.append(f"deployment: {e}")
        print(f"FAILED: deployment: {e}", file=sys.stderr, flush=True)
    # Every operation of the document was called; statuses never seen are listed.
    for method, template, operation in contract.operations() if started else ():
        statuses = {s for (m, t, s) in contract.seen if (m, t) == (method, template)}
        check(bool(statuses), f"{method} {template}: never called")
        missing = sorted(set(operation["responses"]) - {str(s) for s in statuses})
        if missing:
            print(f"# not provoked: {method} {template} {', '.join(missing)}")
    if failures:
        print(f"\n{len(failures)} failure(s):", file=sys.stderr)
        for failure in failures:
            print(f"- {failure}", file=sys.stderr)
        return 1
    print("api contract: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
