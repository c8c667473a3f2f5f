"""The body of ``shipyard verify``: run the gates, then show the verdict as asked (text, one
JSON document, or GitHub annotations and a step summary), and write JUnit XML on request."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from shipyard.cli_fail import fail
from shipyard.exceptions import InputError, ShipyardError
from shipyard.results import Verdict

if TYPE_CHECKING:
    from shipyard.verify import OnGate

FORMATS = ("text", "json", "github")


def run(
    project: Path,
    spec: Path | None,
    base: str | None,
    fmt: str | None,
    as_json: bool,
    junit: Path | None,
    progress: Path | None = None,
    use_cache: bool = True,
    html: bool = False,
) -> None:
    from shipyard.verify import verify

    fmt = _format(fmt, as_json)
    try:
        if junit is not None:
            from shipyard.junit_output import check_target

            check_target(junit)
        on_gate = _progress_writer(progress) if progress is not None else None
        verdict = verify(project, spec_path=spec, base=base, on_gate=on_gate, use_cache=use_cache)
    except ShipyardError as exc:
        _failed(exc, fmt, junit)
    show(verdict, fmt, Path(project))
    if html:
        from shipyard import cli_web

        cli_web.verify_html(verdict.run_dir)
    if junit is not None:
        from shipyard import junit_output

        try:
            junit_output.write(junit_output.verdict_xml(verdict), junit)
        except ShipyardError as exc:
            print(f"shipyard: could not check: {exc}", file=sys.stderr)
            raise SystemExit(exc.exit_code) from exc
    raise SystemExit(verdict.exit_code)


def show(verdict: Verdict, fmt: str, project: Path) -> None:
    if fmt == "json":
        print(json.dumps(verdict.to_json(), indent=2))
        return
    from shipyard.render import print_verdict

    print_verdict(verdict, project)
    if fmt == "github":
        from shipyard import ci_output
        from shipyard.places import Places

        spec = verdict.extra.get("spec")
        places = Places(Path(verdict.extra.get("project") or project), Path(spec) if spec else None)
        for line in ci_output.check_annotations(verdict, places, _root()):
            print(line)
        ci_output.append_summary(ci_output.summary(verdict), os.environ)
        outputs = {"verdict": verdict.status, "exit-code": str(verdict.exit_code)}
        ci_output.set_outputs({**outputs, "run-dir": verdict.run_dir}, os.environ)


def _failed(exc: ShipyardError, fmt: str, junit: Path | None) -> NoReturn:
    if junit is not None and not (isinstance(exc, InputError) and exc.field == "--junit"):
        from shipyard import junit_output

        try:
            junit_output.write(junit_output.error_xml(exc), junit)
        except ShipyardError as problem:
            print(f"shipyard: {problem}", file=sys.stderr)
    if fmt == "github":
        from shipyard import ci_output

        print(ci_output.error_annotation(exc, _root()))
        ci_output.append_summary(ci_output.error_summary(exc), os.environ)
        outputs = {"verdict": "error", "exit-code": str(exc.exit_code), "run-dir": ""}
        ci_output.set_outputs(outputs, os.environ)
    fail(exc, as_json=fmt == "json")


def _format(fmt: str | None, as_json: bool) -> str:
    if fmt is None:
        return "json" if as_json else "text"
    if fmt not in FORMATS:
        fail(
            InputError(f"unknown format {fmt!r} (one of {', '.join(FORMATS)})", field="--format"),
            as_json=as_json,
        )
    if as_json and fmt != "json":
        fail(
            InputError(
                f"--json and --format {fmt} ask for two outputs; choose one", field="--format"
            ),
            as_json=True,
        )
    return fmt


def _root() -> Path:
    """Where annotation paths start: the workspace GitHub checked out, else here."""
    return Path(os.environ.get("GITHUB_WORKSPACE") or Path.cwd()).resolve()


def _progress_writer(path: Path) -> OnGate:
    """A JSON line per gate starting and ending, appended to ``path`` (for ``shipyard mcp``)."""
    from shipyard.verify import GateEvent

    def write(event: GateEvent) -> None:
        line = {
            "run_id": event.run_id,
            "index": event.index,
            "total": event.total,
            "gate": event.gate,
            "status": event.result.status if event.result else None,
            "checks": len(event.result.checks) if event.result else None,
        }
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(line) + "\n")

    return write
