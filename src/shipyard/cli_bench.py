"""``shipyard bench SUITE``: Shipyard's loop against a naive one, judged by hidden checks.

Exit codes: 0 every task of every pass reached an outcome and every shipped tree was judged ·
2 bad input (the suite, a hidden spec, an option) · 3 some task or judgment could not be run,
or the engine could not start · 130 interrupted. A benchmark measures: a blocked task or a
false ship is a figure, not a failure of the command.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from shipyard.exceptions import InputError, ShipyardError

LABELS = {
    "ship_rate": "ship rate",
    "false_ship_rate": "false-ship rate (of shipped)",
    "judge_errors": "judge errors (not judged)",
    "hidden_passing": "hidden checks passing",
    "first_pass_build_rate": "first-pass build",
    "required_tests_passing": "required tests present, passing",
    "runtime_checks_passing": "runtime checks passing",
    "ui_checks_passing": "ui checks passing",
    "attempts_per_shipped": "attempts per shipped task",
    "tokens_per_shipped": "tokens per shipped task",
}
SCHEMA = "shipyard.bench/1"
# the engine's options, shared with `shipyard batch`
Engine = Annotated[str, typer.Option("--engine", help="local (a process pool) or ray.")]
Address = Annotated[
    str | None, typer.Option("--address", help="A running Ray cluster (default: start one).")
]
Workers = Annotated[int, typer.Option("--workers", min=1, max=256)]
Redo = Annotated[bool, typer.Option("--redo", help="Run finished tasks again.")]
KNOWLEDGE = ("ship_rate", "hidden_passing", "attempts_per_shipped", "tokens_per_shipped")


def command(
    suite: Annotated[Path, typer.Argument(help="The suite file (YAML), with hidden checks.")],
    model: Annotated[
        str | None,
        typer.Option("--model", help="provider:model for every task (else each task's)."),
    ] = None,
    implementer: Annotated[
        str | None, typer.Option("--implementer", help="A coding agent instead of a model.")
    ] = None,
    engine: Engine = "local",
    address: Address = None,
    workers: Workers = 2,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="One batch folder per pass (default SUITE.bench/)."),
    ] = None,
    redo: Redo = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """The delivery benchmark: each task through Shipyard's loop and a naive one, both judged
    by hidden checks; ship and false-ship rates side by side."""
    options = {"engine": engine, "address": address, "workers": workers, "redo": redo}
    bench(suite, model, implementer, options, out, as_json)


def bench(
    suite_path: Path,
    model: str | None,
    implementer: str | None,
    options: dict[str, Any],
    out: Path | None,
    as_json: bool,
) -> None:
    import os

    from shipyard.batch.bench import PASSES, BenchOptions, bench_tasks, run_bench
    from shipyard.batch.bench_figures import figures, judged, task_json
    from shipyard.batch.driver import BatchOptions
    from shipyard.batch.suite import load_suite
    from shipyard.environment import hide_from_proc, undumpable

    # The runs' code may read /proc of every process above it: no key in an environment, no
    # path of the suite or of OUT on a command line, and this process's cwd and memory closed.
    hide_from_proc(command_line=True)
    undumpable()
    started = time.monotonic()
    try:
        suite = load_suite(suite_path)
        if model is not None and model.startswith("script:"):
            model = "script:" + str(Path(model.removeprefix("script:")).resolve())
        tasks = bench_tasks(suite, model, implementer)
        target = (out or suite.path.parent / f"{suite.path.stem}.bench").resolve()
        _apart(suite.path.parent, target)
        os.chdir("/")  # the runs (and Ray's workers) start from no folder near the suite
        batch = BatchOptions(**options)
        say = _quiet if as_json else _say
        bench_options = BenchOptions(model=model, implementer=implementer, batch=batch)
        rows = run_bench(suite, tasks, target, bench_options, say)
    except ShipyardError as exc:
        _fail(exc, as_json)
    except KeyboardInterrupt:
        print("shipyard: interrupted: every run of the benchmark was stopped", file=sys.stderr)
        raise typer.Exit(130) from None
    results = {}
    for name in PASSES:
        by_id = {r.task_id: r for r in rows[name]}
        results[name] = [
            judged(t, by_id.get(t.plan.id), target / name, naive=name == "naive") for t in tasks
        ]
    passes = {name: figures(tasks, results[name]) for name in PASSES}
    doc = {
        "schema": SCHEMA, "suite": str(suite.path), "out": str(target),
        "seconds": round(time.monotonic() - started, 1), "passes": passes,
        "tasks": [
            {"id": t.plan.id, **{name: task_json(results[name][i]) for name in PASSES}}
            for i, t in enumerate(tasks)
        ],
    }  # fmt: skip
    if as_json:
        print(json.dumps(doc, indent=2))
    else:
        print()
        print(render(doc))
    errors = sum(p["errors"] for p in passes.values())
    raise typer.Exit(3 if errors else 0)


def _apart(suite_dir: Path, out: Path) -> None:
    """The runs' folders (under the temporary folder) must not be inside the suite's folder or
    OUT: walking up from a run must not reach hidden checks or judgments."""
    import tempfile

    runs = Path(tempfile.gettempdir()).resolve()
    for name, folder in (("the suite's folder", suite_dir), ("--out", out)):
        if runs.is_relative_to(folder):
            raise InputError(
                f"the runs' temporary folder {runs} is inside {name} {folder}: set TMPDIR to "
                "a folder outside it",
                field="TMPDIR",
            )


def _fail(exc: ShipyardError, as_json: bool) -> NoReturn:
    """The error on stderr; with ``--json``, first an error document on stdout."""
    from shipyard.cli_fail import fail

    if as_json:
        doc = {"schema": SCHEMA, "error": str(exc), "exit_code": exc.exit_code}
        print(json.dumps(doc, indent=2))
    fail(exc)


def render(doc: dict[str, Any]) -> str:
    passes = doc["passes"]
    lines = [_row("", "shipyard", "naive")]
    lines += [
        _row(LABELS[k], _cell(passes["shipyard"][k]), _cell(passes["naive"][k])) for k in LABELS
    ]
    lines += ["", _row("knowledge", "on (in order)", "off")]
    lines += [
        _row(LABELS[k], _cell(passes["shipyard"][k]), _cell(passes["no-knowledge"][k]))
        for k in KNOWLEDGE
    ]
    lines += ["", _row("task", "shipyard", "naive", "no knowledge")]
    for task in doc["tasks"]:
        lines.append(
            _row(task["id"], *(_outcome(task[p]) for p in ("shipyard", "naive", "no-knowledge")))
        )
    errors = sum(p["errors"] for p in passes.values())
    lines += [
        "",
        f"{len(doc['tasks'])} task(s) × 3 passes in {doc['seconds']:.1f}s · "
        f"{errors} error(s) · {doc['out']}",
    ]
    return "\n".join(line.rstrip() for line in lines)


def _row(label: str, *cells: str) -> str:
    return f"{label:<34}" + "".join(f"{c:<26}" for c in cells)


def _cell(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, dict):
        if not value["denominator"]:
            return "–"
        return f"{value['numerator']}/{value['denominator']} ({value['value']:.0%})"
    if isinstance(value, float) and value >= 100:
        return f"{value:,.0f}"
    return f"{value:g}"


def _outcome(task: dict[str, Any]) -> str:
    outcome = task["outcome"] or "unfinished"
    if outcome != "shipped":
        return outcome
    if task.get("judge_error"):
        return "shipped, NOT JUDGED (error)"
    return {"passed": "shipped, works"}.get(task["hidden"], f"shipped, BROKEN ({task['hidden']})")


def _say(name: str, task_id: str, state: str, detail: str) -> None:
    print(f"{name:<13}{state:<8} {task_id}" + (f"  {detail}" if detail else ""), flush=True)


def _quiet(name: str, task_id: str, state: str, detail: str) -> None:
    print(f"{name:<13}{state:<8} {task_id}" + (f"  {detail}" if detail else ""), file=sys.stderr)
