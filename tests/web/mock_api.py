#!/usr/bin/env python3
"""A stand-in for `program-executor serve`, for working on the web console.

Serves the console's three files as the real server does (`/`, `/assets/app.js`,
`/assets/style.css`) and an in-memory imitation of docs/api.md: running programs
advance one step every few seconds, so the console's live refresh has something
to show. Not a test of the real API; stdlib only.

    python3 tests/web/mock_api.py [--port 8088] [--programs 140]

Tokens: `operator-token` (operator) and `viewer-token` (viewer).
"""

import argparse
import json
import random
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

CONSOLE = Path(__file__).resolve().parents[2] / "core" / "src" / "web" / "console"
FILES = {"/": ("index.html", "text/html; charset=utf-8"),
         "/assets/app.js": ("app.js", "text/javascript; charset=utf-8"),
         "/assets/style.css": ("style.css", "text/css; charset=utf-8")}
# The policy `serve` sends with the console (core/src/web/web_server.cpp), so
# anything the page does that the real server would block shows up here too.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
TOKENS = {"operator-token": "operator", "viewer-token": "viewer"}
KNOWN_JOBS = ["export.fetch", "export.transform", "export.upload", "demo.count", "demo.log", "reindex.scan"]
STEP_SECONDS = 4.0

lock = threading.Lock()
programs = []   # oldest first; a program's position + 1 is its cursor key
throughput = {}  # minute (datetime) -> steps


def iso(t):
    return None if t is None else t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def now():
    return datetime.now(timezone.utc)


def make_program(jobs, created, program_data=None, job_data=None):
    return {"runId": str(uuid.uuid4()), "state": "running", "jobs": jobs, "step": 0,
            "stepRetryCount": 0, "error": None, "createdAt": created, "updatedAt": created,
            "finishedAt": None, "erroredAt": None, "cancelledAt": None,
            "leaseOwner": None, "jobData": job_data or {}, "programData": program_data or {},
            "_next": time.time() + STEP_SECONDS * random.uniform(0.5, 1.5)}


def advance(p):
    """Moves a running program along by wall-clock time: a step, a retry or an error."""
    while p["state"] == "running" and time.time() >= p["_next"]:
        t = now()
        p["updatedAt"] = t
        p["_next"] += STEP_SECONDS
        minute = t.replace(second=0, microsecond=0)
        throughput[minute] = throughput.get(minute, 0) + random.randint(20, 60)
        roll = random.random()
        if roll < 0.08:
            p["state"], p["erroredAt"] = "errored", t
            p["error"] = f"{p['jobs'][p['step']]}: upstream answered 500 Internal Server Error\n  at attempt {p['stepRetryCount'] + 1}"
        elif roll < 0.2:
            p["stepRetryCount"] += 1
            p["error"] = "connection reset by peer (retrying)"
        else:
            p["step"] += 1
            p["stepRetryCount"], p["error"] = 0, None
            if p["step"] == len(p["jobs"]):
                p["state"], p["finishedAt"], p["leaseOwner"] = "finished", t, None
        if p["state"] == "running":
            p["leaseOwner"] = random.choice(["worker-a:4711:0", "worker-b:812:1", None])


def seed(count):
    start = now() - timedelta(minutes=70)
    for minute in range(61):
        m = (now() - timedelta(minutes=minute)).replace(second=0, microsecond=0)
        throughput[m] = 0 if minute % 17 == 5 else random.randint(200, 900)
    for i in range(count):
        jobs = random.sample(KNOWN_JOBS, random.randint(1, 4))
        created = start + timedelta(seconds=i * 30)
        p = make_program(jobs, created, {"day": "2026-12-06", "n": i}, {jobs[0]: {"batch": 500}})
        fate = random.random()
        if i >= count - 12:
            p["step"] = random.randrange(len(jobs))
            p["leaseOwner"] = "worker-a:4711:0"
        elif fate < 0.65:
            p["state"], p["step"] = "finished", len(jobs)
            p["finishedAt"] = p["updatedAt"] = created + timedelta(seconds=20)
        elif fate < 0.85:
            p["state"], p["step"] = "errored", random.randrange(len(jobs))
            p["erroredAt"] = p["updatedAt"] = created + timedelta(seconds=15)
            p["stepRetryCount"] = random.randint(0, 3)
            p["error"] = (f"job {jobs[p['step']]} failed: <script>alert('x')</script> "
                          "a rather long error message that goes on to show how wrapping works in the table")
        else:
            p["state"], p["step"] = "cancelled", random.randrange(len(jobs))
            p["erroredAt"] = p["cancelledAt"] = p["updatedAt"] = created + timedelta(seconds=10)
            p["error"] = "cancelled"
        programs.append(p)


def shown(p, full=True):
    out = {k: (iso(v) if isinstance(v, datetime) else v) for k, v in p.items() if not k.startswith("_")}
    out["currentJob"] = p["jobs"][p["step"]] if p["step"] < len(p["jobs"]) else None
    if not full:
        del out["jobData"], out["programData"]
    return out


def attempts_of(p):
    """An imitation of GET /programs/{runId}/attempts, made up from the row:
    one finished attempt per step done, the retries of the current step, its
    error. The reason is a stand-in, not what `explain` would say."""
    out, t = [], p["createdAt"]
    worker = "worker-a:4711:0"
    rng = random.Random(p["runId"])  # the same durations on every refresh

    def attempt(step, number, outcome, error=None):
        nonlocal t
        ms = rng.randint(3, 900)
        out.append({"step": step, "job": p["jobs"][step], "attempt": number, "outcome": outcome,
                    "worker": worker, "startedAt": iso(t), "endedAt": iso(t + timedelta(milliseconds=ms)),
                    "durationMs": ms, "error": error,
                    "exceptionType": "std::runtime_error" if error else None})
        t += timedelta(milliseconds=ms + 1000)

    for step in range(min(p["step"], len(p["jobs"]))):
        attempt(step, 1, "finished")
    if p["step"] < len(p["jobs"]):
        for retry in range(p["stepRetryCount"]):
            attempt(p["step"], retry + 1, "retry", "connection reset by peer (retrying)")
        if p["state"] == "errored":
            attempt(p["step"], p["stepRetryCount"] + 1, "errored", p["error"])
    reason = {"finished": f"finished: all {len(p['jobs'])} steps committed (mock)",
              "errored": f"errored at step {p['step']}: {p['error']} (mock)",
              "cancelled": "cancelled by an operator (mock)"}.get(p["state"], "running (mock)")
    return {"runId": p["runId"], "state": p["state"], "reason": reason, "attempts": out}


class Handler(BaseHTTPRequestHandler):
    def log_message(self, fmt, *args):
        pass

    def send(self, status, body, ctype="application/json", headers=()):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def problem(self, status, suffix, title, detail, **extra):
        headers = [("WWW-Authenticate", "Bearer")] if status == 401 else []
        self.send(status, {"type": f"urn:program-executor:problem:{suffix}", "title": title,
                           "status": status, "detail": detail, **extra},
                  "application/problem+json", headers)

    def role(self):
        auth = self.headers.get("Authorization", "")
        return TOKENS.get(auth[7:]) if auth.startswith("Bearer ") else None

    def do_GET(self):
        self.route("GET")

    def do_POST(self):
        self.route("POST")

    def route(self, method):
        url = urlsplit(self.path)
        path, query = url.path, parse_qs(url.query)
        if method == "GET" and path in FILES:
            name, ctype = FILES[path]
            return self.send(200, (CONSOLE / name).read_bytes(), ctype, [("Content-Security-Policy", CSP)])
        if path == "/api/v1/health":
            return self.send(200, {"status": "ok"})
        if not path.startswith("/api/v1/"):
            return self.problem(404, "not-found", "Not found", f"no route {path}")
        role = self.role()
        if role is None:
            return self.problem(401, "unauthorized", "Unauthorized", "a bearer token is needed")
        time.sleep(0.05)  # a little latency, as over a network
        parts = path.split("/")[3:]
        with lock:
            for p in programs:
                advance(p)
            if sum(p["state"] == "running" for p in programs) < 6:  # keep something moving
                programs.append(make_program(random.sample(KNOWN_JOBS, 3), now(), {"auto": True}))
            if method == "POST":
                if role != "operator":
                    return self.problem(403, "forbidden", "Forbidden", "a viewer token may not change programs")
                return self.post(parts)
            return self.get(parts, query)

    def get(self, parts, query):
        if parts == ["stats"]:
            counts = {s: 0 for s in ("running", "finished", "errored", "cancelled")}
            for p in programs:
                counts[p["state"]] += 1
            last = now().replace(second=0, microsecond=0)
            minutes = [last - timedelta(minutes=59 - i) for i in range(60)]
            errors = sorted((p for p in programs if p["state"] == "errored"),
                            key=lambda p: p["erroredAt"], reverse=True)[:10]
            return self.send(200, {"counts": counts,
                                   "stepsPerMinute": [{"minute": m.strftime("%Y-%m-%dT%H:%M:%SZ"),
                                                       "steps": throughput.get(m, 0)} for m in minutes],
                                   "recentErrors": [shown(p) for p in errors]})
        if parts == ["jobs"]:
            return self.send(200, {"jobs": [{"name": j, "plugin": f"/usr/lib/x86_64-linux-gnu/program-executor/plugins/{j.split('.')[0]}.so"} for j in KNOWN_JOBS]})
        if parts == ["programs"]:
            state, job = query.get("state", [None])[0], query.get("job", [None])[0]
            if state not in (None, "running", "finished", "errored", "cancelled"):
                return self.problem(400, "invalid-request", "Invalid request", f"state: unknown state {state!r}")
            try:
                limit = int(query.get("limit", ["50"])[0])
                cursor = int(query.get("cursor", [str(len(programs) + 1)])[0])
            except ValueError:
                return self.problem(400, "invalid-request", "Invalid request", "limit and cursor are integers")
            if not 1 <= limit <= 500:
                return self.problem(400, "invalid-request", "Invalid request", "limit: 1 to 500")
            page, next_cursor = [], None
            for key in range(min(cursor, len(programs) + 1) - 1, 0, -1):
                p = programs[key - 1]
                if (state and p["state"] != state) or (job and job not in p["jobs"]):
                    continue
                if len(page) == limit:
                    next_cursor = str(key + 1)
                    break
                page.append(shown(p, full=False))
            return self.send(200, {"programs": page, "nextCursor": next_cursor})
        if len(parts) == 2 and parts[0] == "programs":
            p = next((p for p in programs if p["runId"] == parts[1]), None)
            if p is None:
                return self.problem(404, "not-found", "Not found", f"no program with run id {parts[1]}")
            return self.send(200, shown(p))
        if len(parts) == 3 and parts[0] == "programs" and parts[2] == "attempts":
            p = next((p for p in programs if p["runId"] == parts[1]), None)
            if p is None:
                return self.problem(404, "not-found", "Not found", f"no program with run id {parts[1]}")
            return self.send(200, attempts_of(p))
        return self.problem(404, "not-found", "Not found", "no such route")

    def body(self):
        if self.headers.get("Content-Type", "").split(";")[0].strip() != "application/json":
            raise ValueError(415)
        raw = self.rfile.read(int(self.headers.get("Content-Length", "0") or 0))
        return json.loads(raw) if raw else {}

    def post(self, parts):
        try:
            body = self.body()
        except ValueError as e:
            if e.args == (415,):
                return self.problem(415, "unsupported-media-type", "Unsupported media type", "send application/json")
            return self.problem(400, "invalid-json", "Invalid JSON", str(e))
        if parts == ["programs"]:
            jobs = body.get("jobs")
            if not isinstance(jobs, list) or not jobs or not all(isinstance(j, str) and j for j in jobs):
                return self.problem(400, "invalid-request", "Invalid request", "jobs: a non-empty array of job names")
            for field in ("programData", "jobData"):
                if field in body and not isinstance(body[field], dict):
                    return self.problem(400, "invalid-request", "Invalid request", f"{field}: expected an object")
            unknown = [j for j in jobs if j not in KNOWN_JOBS]
            if unknown:
                return self.problem(422, "unknown-jobs", "Unknown jobs",
                                    f"no daemon has loaded the job(s) {', '.join(unknown)}", unknownJobs=unknown)
            p = make_program(jobs, now(), body.get("programData"), body.get("jobData"))
            programs.append(p)
            return self.send(201, {"runId": p["runId"]}, headers=[("Location", f"/api/v1/programs/{p['runId']}")])
        if len(parts) == 3 and parts[0] == "programs" and parts[2] in ("cancel", "resume"):
            p = next((p for p in programs if p["runId"] == parts[1]), None)
            if p is None:
                return self.problem(404, "not-found", "Not found", f"no program with run id {parts[1]}")
            if parts[2] == "cancel":
                if p["state"] in ("finished", "errored"):
                    return self.problem(409, "conflict", "Conflict", f"the program is {p['state']}: only a running one can be cancelled")
                if p["state"] == "running":
                    p["state"], p["error"], p["leaseOwner"] = "cancelled", "cancelled", None
                    p["erroredAt"] = p["cancelledAt"] = p["updatedAt"] = now()
                return self.send(200, shown(p))
            if p["state"] in ("running", "finished"):
                return self.problem(409, "conflict", "Conflict", f"the program is {p['state']}: only an errored or cancelled one can be resumed")
            step = body.get("fromStep")
            if step is not None and (not isinstance(step, int) or not 1 <= step <= len(p["jobs"])):
                return self.problem(400, "invalid-request", "Invalid request",
                                    f"fromStep: 1 to {len(p['jobs'])} (the program has {len(p['jobs'])} steps)")
            p["state"], p["error"], p["erroredAt"], p["cancelledAt"] = "running", None, None, None
            p["step"] = step - 1 if step else p["step"]
            p["stepRetryCount"], p["updatedAt"], p["_next"] = 0, now(), time.time() + STEP_SECONDS
            return self.send(200, shown(p))
        return self.problem(404, "not-found", "Not found", "no such route")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8088)
    parser.add_argument("--programs", type=int, default=140)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    random.seed(args.seed)
    seed(args.programs)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    print(f"console on http://127.0.0.1:{args.port}/ (tokens: operator-token, viewer-token)", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
