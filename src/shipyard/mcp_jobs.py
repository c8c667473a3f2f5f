"""Verifies for ``shipyard mcp``: each one a ``shipyard verify --json`` child process.

A child of its own keeps the server's stdout clean and lets a verify be stopped like any
command (SIGTERM unwinds it: its apps and test runs are stopped on the way out). Its progress
is read from the JSON lines it appends per gate; its verdict from its stdout.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shipyard import process

MAX_RUNNING = 4
"""Verifies running at once in one server (each project has at most one)."""
KEEP_FINISHED = 32
STOP_GRACE = 15.0
"""Seconds a stopped verify gets to stop its apps and tests before it is killed."""
MAX_DOCUMENT = 16 * 1024 * 1024


class JobRefused(Exception):
    """A verify that cannot start now, or a job id this server does not know."""


@dataclass(frozen=True, kw_only=True)
class Progress:
    value: float
    total: float
    message: str


@dataclass(frozen=True, kw_only=True)
class Outcome:
    ok: bool
    """True: ``document`` is a verdict (passed, failed or error); False: verify could not run."""
    document: dict[str, Any]
    text: str


@dataclass(kw_only=True)
class Job:
    id: str
    project: Path
    folder: Path
    proc: subprocess.Popen[bytes]
    started: float = field(default_factory=time.monotonic)

    def done(self) -> bool:
        return self.proc.poll() is not None

    def events(self) -> list[dict[str, Any]]:
        try:
            lines = (self.folder / "progress.jsonl").read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return []
        out = []
        for line in lines:
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                break  # a line still being written
        return out

    def progress(self) -> list[Progress]:
        """Strictly increasing values, half a gate per event: with gates running concurrently a
        later gate may start before an earlier one ends, so the value counts events seen, not the
        gate's position (``total`` gates, two events each)."""
        out = []
        for seen, event in enumerate(self.events(), start=1):
            total, gate, status = event["total"], event["gate"], event["status"]
            if status is None:
                message = f"{gate}: running"
            else:
                message = f"{gate} {status} ({event['checks']} checks)"
            out.append(Progress(value=seen / 2, total=total, message=message))
        return out

    def run_id(self) -> str | None:
        events = self.events()
        return events[0]["run_id"] if events else None

    def outcome(self) -> Outcome:
        code = self.proc.returncode
        data = _read(self.folder / "stdout.json")
        try:
            doc = json.loads(data) if data else None
        except json.JSONDecodeError:
            doc = None
        if isinstance(doc, dict) and "gates" in doc:
            return Outcome(ok=True, document=doc, text=_headline(doc))
        if isinstance(doc, dict) and "error" in doc:
            kind = "bad input" if doc.get("exit_code") == 2 else "could not check"
            return Outcome(ok=False, document=doc, text=f"{kind}: {doc['error']}")
        tail = process.tail_of(self.folder / "stderr.log", 15)
        text = f"verify ended with exit {code} and no verdict:\n{tail}".rstrip()
        doc = {"schema": "shipyard.verify/1", "verdict": "error", "exit_code": 3, "error": text}
        return Outcome(ok=False, document=doc, text=text)

    def stop(self) -> None:
        process.stop_group(self.proc, grace=STOP_GRACE)


class Jobs:
    """The verifies of one server, by id; the finished ones kept until ``KEEP_FINISHED``."""

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="shipyard-mcp-"))
        self.jobs: dict[str, Job] = {}

    def start(self, project: Path, spec: Path | None, base: str | None) -> Job:
        running = [j for j in self.jobs.values() if not j.done()]
        if busy := next((j for j in running if j.project == project), None):
            raise JobRefused(
                f"a verify of {project} is already running (job {busy.id}); "
                "wait for it with verify_result"
            )
        if len(running) >= MAX_RUNNING:
            raise JobRefused(f"{len(running)} verifies are running; wait for one to finish")
        self._forget_old()
        job_id = f"j-{secrets.token_hex(6)}"
        folder = self.folder / job_id
        folder.mkdir()
        argv = [
            sys.executable,
            "-m",
            "shipyard",
            "verify",
            "--json",
            "--project",
            str(project),
            "--progress",
            str(folder / "progress.jsonl"),
        ]
        if spec is not None:
            argv.append(f"--spec={spec}")  # "=": a value is never read as an option
        if base is not None:
            argv.append(f"--base={base}")
        proc = process.start(
            argv,
            cwd=project,
            env=dict(os.environ),
            stdout=folder / "stdout.json",
            stderr=folder / "stderr.log",
        )
        job = Job(id=job_id, project=project, folder=folder, proc=proc)
        self.jobs[job_id] = job
        return job

    def get(self, job_id: str) -> Job:
        if (job := self.jobs.get(job_id)) is None:
            known = ", ".join(self.jobs) or "none"
            raise JobRefused(f"no job {job_id!r} in this server (known: {known})")
        return job

    def close(self) -> None:
        """Stop every verify still running and remove the server's own files."""
        for job in self.jobs.values():
            if not job.done():
                job.stop()
        shutil.rmtree(self.folder, ignore_errors=True)

    def _forget_old(self) -> None:
        finished = [j for j in self.jobs.values() if j.done()]
        for job in finished[: max(0, len(finished) - KEEP_FINISHED + 1)]:
            del self.jobs[job.id]
            shutil.rmtree(job.folder, ignore_errors=True)


def _read(path: Path) -> str:
    try:
        with open(path, "rb") as fh:
            return fh.read(MAX_DOCUMENT).decode("utf-8", errors="replace")
    except FileNotFoundError:
        return ""


def _headline(doc: dict[str, Any]) -> str:
    words = {"passed": "verified", "failed": "not verified", "error": "could not check"}
    lines = [
        f"{words.get(doc['verdict'], doc['verdict'])} (exit {doc['exit_code']}) · "
        f"evidence: {doc.get('run_dir')}"
    ]
    for gate in doc["gates"]:
        for check in gate["checks"]:
            if check["status"] != "passed":
                first = (check.get("message") or check["status"]).splitlines() or [""]
                lines.append(f"{check['status']}: {gate['name']} {check['id']}: {first[0]}")
    return "\n".join(lines)
