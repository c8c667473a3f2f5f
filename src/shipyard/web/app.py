"""The dashboard's pages: ``/`` (runs), ``/runs/<id>``, ``/verifies``, ``/verifies/<id>``,
``/knowledge``, ``/metrics``; evidence files under ``/files/<run or verify id>/…``; a run's new
events as server-sent events at ``/runs/<id>/events``. Every read goes through the read-only
ledger (:mod:`shipyard.store.reads`); nothing here writes."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import quote

from markupsafe import Markup
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route

from shipyard.exceptions import RunNotFound, ShipyardError
from shipyard.loop.state import RunState
from shipyard.report import evidence as ev
from shipyard.report import html
from shipyard.report import run as runs
from shipyard.report.model import read_json, verify_report
from shipyard.store.ledger import alive
from shipyard.store.reads import STATUSES, ReadLedger, RunQuery, open_readonly
from shipyard.web import live
from shipyard.web.metrics import metrics

SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,200}")
IMAGE_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg",
               ".webp": "image/webp"}  # fmt: skip
PAGE_SIZE, MAX_PAGE = 100, 1000
MAX_VERIFY_FOLDERS = 200


@dataclass(frozen=True, kw_only=True)
class Site:
    project: Path

    @property
    def runs_root(self) -> Path:
        return self.project / ".shipyard" / "runs"

    def ledger(self) -> ReadLedger[RunState]:
        return open_readonly(self.project, RunState.model_validate_json)

    def link(self, path: Path) -> str:
        rel = path.resolve().relative_to(self.runs_root.resolve())
        return "/files/" + quote(rel.as_posix())


def create_app(project: Path) -> Starlette:
    site = Site(project=project)

    def page(fn: Callable[[Site, Request], Response]) -> Callable[[Request], Response]:
        def endpoint(request: Request) -> Response:
            try:
                return fn(site, request)
            except RunNotFound as exc:
                return _page(request, "error.html.j2", 404, message=str(exc))
            except ShipyardError as exc:
                return _page(request, "error.html.j2", 400 if exc.exit_code == 2 else 503,
                             message=str(exc))  # fmt: skip

        return endpoint

    async def events(request: Request) -> Response:
        return await live.stream(site.ledger, request)

    app = Starlette(
        routes=[
            Route("/", page(runs_page)),
            Route("/runs/{run_id}", page(run_page)),
            Route("/runs/{run_id}/events", events),
            Route("/verifies", page(verifies_page)),
            Route("/verifies/{verify_id}", page(verify_page)),
            Route("/knowledge", page(knowledge_page)),
            Route("/metrics", page(metrics_page)),
            Route("/files/{path:path}", page(file_response)),
            Route("/static/{name}", static),
            Route("/favicon.ico", lambda request: Response(status_code=204)),
        ]
    )
    app.state.project_name = project.name
    return app


def _page(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    text = (
        html.environment()
        .get_template(template)
        .render(path=request.url.path, project=request.app.state.project_name, **context)
    )
    return HTMLResponse(text, status_code=status, headers={"cache-control": "no-store"})


# -- pages ---------------------------------------------------------------------------------------


def runs_page(site: Site, request: Request) -> Response:
    q = request.query_params
    query = RunQuery(
        status=_choice(q.get("status"), (*STATUSES,)), since=_date(q.get("since"), "since"),
        until=_date(q.get("until"), "until", end=True),
        words=tuple((q.get("q") or "").split()), limit=_int(q.get("limit"), PAGE_SIZE, MAX_PAGE),
        offset=_int(q.get("offset"), 0, 10**9),
    )  # fmt: skip
    ledger = site.ledger()
    try:
        rows, total = ledger.run_rows(query), ledger.count_runs(query)
    finally:
        ledger.close()
    shown = [
        (r, "stopped" if r.status == "running" and not (r.pid and alive(r.pid)) else r.status)
        for r in rows
    ]
    return _page(request, "runs.html.j2", rows=shown, total=total, query=query,
                 q=dict(q), statuses=STATUSES)  # fmt: skip


def run_page(site: Site, request: Request) -> Response:
    ledger = site.ledger()
    try:
        record = ledger.run(request.path_params["run_id"])
        report = runs.build(ledger, record, site.project, site.link)
    finally:
        ledger.close()
    body = html.environment().get_template("run_body.html.j2").render(r=report)
    return _page(request, "run.html.j2", r=report, body=Markup(body))


def verifies_page(site: Site, request: Request) -> Response:
    folders = []
    if site.runs_root.is_dir():
        names = sorted((p.name for p in site.runs_root.glob("v-*") if p.is_dir()), reverse=True)
        for name in names[:MAX_VERIFY_FOLDERS]:
            verdict = read_json(site.runs_root / name / "verdict.json")
            spec = read_json(site.runs_root / name / "spec.json")
            folders.append(
                {"id": name,
                 "status": verdict.get("verdict", "error") if isinstance(verdict, dict) else
                 "cut short",
                 "task": spec.get("task", "") if isinstance(spec, dict) else ""}
            )  # fmt: skip
    ledger = site.ledger() if (site.project / ".shipyard" / "shipyard.db").is_file() else None
    try:
        in_runs = ledger.recent_verifies() if ledger else []
    finally:
        if ledger:
            ledger.close()
    return _page(request, "verifies.html.j2", folders=folders, in_runs=in_runs)


def verify_page(site: Site, request: Request) -> Response:
    verify_id = request.path_params["verify_id"]
    folder = site.runs_root / verify_id
    if not SAFE_ID.fullmatch(verify_id) or not (folder / "verdict.json").is_file():
        return _page(request, "error.html.j2", 404, message=f"no verify {verify_id!r}")
    report = verify_report(folder, site.link)
    body = html.environment().get_template("verify_body.html.j2").render(v=report)
    return _page(request, "verify.html.j2", v=report, body=Markup(body))


def knowledge_page(site: Site, request: Request) -> Response:
    every = request.query_params.get("all") == "1"
    ledger = site.ledger()
    try:
        entries, uses = ledger.knowledge_entries(superseded=every), ledger.knowledge_uses()
    finally:
        ledger.close()
    return _page(request, "knowledge.html.j2", entries=entries, uses=uses, every=every)


def metrics_page(site: Site, request: Request) -> Response:
    ledger = site.ledger()
    try:
        rows = ledger.run_figures()
    finally:
        ledger.close()
    from shipyard.cli_runs import STATS_LABELS

    return _page(request, "metrics.html.j2", m=metrics(rows), labels=STATS_LABELS)


def file_response(site: Site, request: Request) -> Response:
    """An evidence file, from a run folder only. Images as images; anything else as plain text
    (never as a page or a script of this origin)."""
    rel = request.path_params["path"]
    first = rel.split("/", 1)[0]
    path = ev.inside(site.runs_root, rel) if SAFE_ID.fullmatch(first) else None
    if path is None or path.name.endswith((".db", ".index")):
        return PlainTextResponse("no such evidence file\n", status_code=404)
    media = IMAGE_TYPES.get(path.suffix.lower(), "text/plain; charset=utf-8")
    return FileResponse(path, media_type=media, headers={"content-disposition": "inline"})


def static(request: Request) -> Response:
    name = request.path_params["name"]
    if name == "app.css":
        return Response(html.stylesheet(), media_type="text/css")
    if name == "live.js":
        return Response(live_script(), media_type="text/javascript")
    return PlainTextResponse("not found\n", status_code=404)


@cache
def live_script() -> str:
    return resources.files("shipyard.web").joinpath("static/live.js").read_text()


# -- query parameters ----------------------------------------------------------------------------


def _choice(value: str | None, allowed: tuple[str, ...]) -> str | None:
    if not value:
        return None
    if value not in allowed:
        raise _bad(f"status must be one of {', '.join(allowed)}, not {value!r}")
    return value


def _date(value: str | None, name: str, *, end: bool = False) -> float | None:
    if not value:
        return None
    try:
        day = time.strptime(value, "%Y-%m-%d")
    except ValueError:
        raise _bad(f"{name} must be a date as YYYY-MM-DD, not {value!r}") from None
    start = time.mktime(day)
    return start + 86_400 if end else start


def _int(value: str | None, default: int, top: int) -> int:
    if not value:
        return default
    if not value.isdigit():
        raise _bad(f"{value!r} is not a whole number")
    return min(int(value), top)


def _bad(message: str) -> ShipyardError:
    from shipyard.exceptions import InputError

    return InputError(message)
