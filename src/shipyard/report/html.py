"""Self-contained HTML reports: one file that works from ``file://`` with no network and no
service worker. CSS is inline (allowed by its hash in the page's Content-Security-Policy), the
screenshots are embedded thumbnails linking the full images by relative path, the data behind
the page is embedded as JSON (``<script type="application/json" id="shipyard-data">``), and
there is no script to run at all."""

from __future__ import annotations

import base64
import hashlib
import os
import time
from dataclasses import asdict, is_dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from markupsafe import Markup

from shipyard.report import diff as diffs
from shipyard.report.model import Linker, VerifyReport, verify_report
from shipyard.report.run import RunReport

if TYPE_CHECKING:
    import jinja2

SCHEMA = "shipyard.report/1"


@cache
def environment() -> jinja2.Environment:
    """The Jinja2 environment of the report and dashboard templates (autoescaped)."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.ChoiceLoader(
            [
                jinja2.PackageLoader("shipyard.report", "templates"),
                jinja2.PackageLoader("shipyard.web", "templates"),
            ]
        ),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["when"] = when
    env.filters["secs"] = secs
    return env


@cache
def stylesheet() -> str:
    css = resources.files("shipyard.report").joinpath("static/report.css").read_text()
    return css + "\n" + diffs.css() + "\n"


def when(epoch: float | None) -> str:
    if not epoch:
        return "–"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(epoch))


def secs(value: float | None) -> str:
    if value is None:
        return "–"
    if value < 60:
        return f"{value:.1f}s"
    minutes, seconds = divmod(int(value), 60)
    return f"{minutes}m{seconds:02d}s" if minutes < 60 else f"{minutes // 60}h{minutes % 60:02d}m"


def relative_linker(out: Path) -> Linker:
    """Links relative to the folder the report is written to."""
    base = out.resolve().parent

    def link(path: Path) -> str:
        return quote(Path(os.path.relpath(path.resolve(), base)).as_posix())

    return link


def csp_for(css: str) -> str:
    digest = base64.b64encode(hashlib.sha256(css.encode()).digest()).decode()
    return (
        f"default-src 'none'; img-src data:; style-src 'sha256-{digest}'; "
        "base-uri 'none'; form-action 'none'"
    )


def render_run(report: RunReport) -> str:
    body = environment().get_template("run_body.html.j2").render(r=report)
    return _document(f"{report.outcome}: {report.task[:80]}", body, run_data(report))


def render_verify(report: VerifyReport) -> str:
    body = environment().get_template("verify_body.html.j2").render(v=report)
    return _document(f"verify {report.status}: {report.task[:80]}", body, verify_data(report))


def _document(title: str, body: str, data: dict[str, Any]) -> str:
    from shipyard import __version__

    css = stylesheet()
    return (
        environment()
        .get_template("report_file.html.j2")
        .render(
            title=title,
            body=Markup(body),
            css=Markup(css),
            csp=csp_for(css),
            data=data,
            version=__version__,
            written=time.time(),
        )  # fmt: skip
    )


def write_verify(folder: Path, out: Path | None = None) -> Path:
    out = out or folder / "report.html"
    report = verify_report(folder, relative_linker(out))
    _write(out, render_verify(report))
    return out


def _write(out: Path, text: str) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(out)


def write_run_html(report: RunReport, out: Path) -> Path:
    _write(out, render_run(report))
    return out


# -- the embedded data -------------------------------------------------------------------------


def run_data(r: RunReport) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "kind": "run",
        "run": {
            "id": r.id, "task": r.task, "status": r.status, "reason": r.reason,
            "branch": r.branch, "base_sha": r.base_sha, "commit": r.commit,
            "created_at": r.created_at, "updated_at": r.updated_at, "tokens": r.tokens,
            "cost": r.cost,
        },
        "acceptance": [asdict(a) for a in r.acceptance],
        "attempts": [
            {"n": a.n, "outcome": a.outcome, "detail": a.detail, "duration": round(a.duration, 3),
             "steps": len(a.steps)}
            for a in r.attempts
        ],
        "verifies": [_verify_json(v) for v in r.verifies],
        "reviews": [_plain(x) for x in r.reviews],
        "diagnoses": [_plain(x) for x in r.diagnoses],
        "usage": [_plain(u) for u in r.usage],
        "files_changed": [
            {"path": f.path, "added": f.added, "removed": f.removed} for f in r.diff.files
        ],
        "cuts": list(r.cuts),
    }  # fmt: skip


def verify_data(v: VerifyReport) -> dict[str, Any]:
    return {
        "schema": SCHEMA, "kind": "verify", "id": v.id, "status": v.status, "task": v.task,
        "acceptance": [asdict(a) for a in v.acceptance], "verify": _verify_json(v.verify),
        "cuts": list(v.cuts),
    }  # fmt: skip


def _verify_json(v: Any) -> dict[str, Any]:
    return {
        "id": v.id, "attempt": v.attempt, "status": v.status,
        "gates": [
            {"name": g.name, "status": g.status, "checks": [
                {"id": c.id, "kind": c.kind, "status": c.status, "message": c.message[:2000],
                 "covers": list(c.covers), "evidence": c.evidence}
                for c in g.checks
            ]}
            for g in v.gates
        ],
    }  # fmt: skip


def _plain(value: Any) -> Any:
    return asdict(value) if is_dataclass(value) and not isinstance(value, type) else value
