"""The commands that show what happened: ``report RUN --html``, ``verify --html``, ``serve``."""

from __future__ import annotations

import sys
from pathlib import Path

from shipyard.cli_fail import fail
from shipyard.exceptions import InputError, ShipyardError


def report_html(run: str, project: Path, output: Path | None, html_: bool = True) -> None:
    """Write the run's self-contained HTML report; print where."""
    if not html_:
        fail(InputError("--output is for the HTML report: add --html", field="--output"))
    from shipyard.report import html
    from shipyard.report import run as runs
    from shipyard.store.reads import open_readonly

    project = project.resolve()
    try:
        from shipyard.loop.state import RunState

        ledger = open_readonly(project, RunState.model_validate_json)
        try:
            record = ledger.run(run)
            out = (output or runs.run_dir(project, record.id) / "report.html").resolve()
            report = runs.build(ledger, record, project, html.relative_linker(out))
        finally:
            ledger.close()
        html.write_run_html(report, out)
    except ShipyardError as exc:
        fail(exc)
    except OSError as exc:
        fail(InputError(f"cannot write the report: {exc.strerror or exc}", file=str(output)))
    print(out)


def verify_html(run_dir: str) -> None:
    """After ``verify --html``: the verify's report, in its folder (told on stderr, so that
    ``--json`` keeps stdout one document)."""
    from shipyard.report import html

    out = html.write_verify(Path(run_dir))
    print(f"html report: {out}", file=sys.stderr)


def serve(project: Path, host: str, port: int, batch: Path | None = None) -> None:
    from shipyard.web.server import serve as run_server

    try:
        run_server(project.resolve(), host, port, batch.resolve() if batch else None)
    except ShipyardError as exc:
        fail(exc)
