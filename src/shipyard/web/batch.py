"""``shipyard serve --batch DIR``: the tasks of a ``shipyard batch`` (or one pass of
``shipyard bench``) from its batch database, read with ``mode=ro``: ``/`` lists every task
with its outcome, attempts, tokens and seconds; ``/tasks/<id>/console`` is a task's console
log, as plain text. Nothing here writes."""

from __future__ import annotations

from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route

from shipyard.batch.suite import TASK_ID
from shipyard.exceptions import ShipyardError
from shipyard.report import evidence as ev
from shipyard.report import html
from shipyard.store.reads import batch_rows
from shipyard.web.app import static

NAV = [("/", "tasks")]


def create_batch_app(folder: Path) -> Starlette:
    def tasks_page(request: Request) -> Response:
        from shipyard.cli_batch import figures

        try:
            rows = batch_rows(folder)
        except ShipyardError as exc:
            return _page(request, "error.html.j2", 503, message=str(exc))
        return _page(request, "batch.html.j2", rows=rows, doc=figures(rows))

    def console(request: Request) -> Response:
        task_id = request.path_params["task_id"]
        import re

        path = None
        if re.fullmatch(TASK_ID, task_id):
            path = ev.inside(folder / "evidence", f"{task_id}/console.log")
        if path is None:
            return PlainTextResponse("no such task log\n", status_code=404)
        return FileResponse(path, media_type="text/plain; charset=utf-8")

    app = Starlette(
        routes=[
            Route("/", tasks_page),
            Route("/tasks/{task_id}/console", console),
            Route("/static/{name}", static),
            Route("/favicon.ico", lambda request: Response(status_code=204)),
        ]
    )
    app.state.project_name = f"batch {folder.name}"
    return app


def _page(request: Request, template: str, status: int = 200, **context: object) -> HTMLResponse:
    text = (
        html.environment()
        .get_template(template)
        .render(path=request.url.path, project=request.app.state.project_name, nav=NAV, **context)
    )
    return HTMLResponse(text, status_code=status, headers={"cache-control": "no-store"})
