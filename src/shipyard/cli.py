"""The command line: parse, call the library, render, map errors to exit codes.

Exit codes: 0 verified · 1 checked and not good · 2 bad input · 3 could not check.
Heavy modules are imported inside the commands so that ``shipyard --help`` stays fast; plain
``verify`` and ``hook`` arguments do not come through here at all (``entry.py``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from shipyard import cli_bench  # options only: its work is imported when it runs
from shipyard.cli_fail import fail
from shipyard.entry import main  # the program's entry point: `python -m shipyard`, the script
from shipyard.exceptions import ShipyardError

__all__ = ["app", "main"]

app = typer.Typer(
    name="shipyard",
    help="Make coding agents ship working software: every claim checked by running it.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

ProjectOption = Annotated[
    Path, typer.Option("--project", "-C", help="The project folder.", file_okay=False)
]


@app.command()
def verify(
    spec: Annotated[
        Path | None,
        typer.Option("--spec", help="The spec YAML (default: spec.yaml in the project)."),
    ] = None,
    base: Annotated[
        str | None,
        typer.Option(
            "--base", help="Base revision: required tests must fail there, none weakened."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
    no_cache: Annotated[
        bool, typer.Option("--no-cache", help="Run every gate even if a stored verdict fits.")
    ] = False,
    fmt: Annotated[
        str | None,
        typer.Option("--format", help="text, json, or github (annotations and a step summary)."),
    ] = None,
    junit: Annotated[
        Path | None, typer.Option("--junit", help="Also write the checks as JUnit XML here.")
    ] = None,
    progress: Annotated[Path | None, typer.Option("--progress", hidden=True)] = None,
    html: Annotated[
        bool, typer.Option("--html", help="Also write report.html into the evidence folder.")
    ] = False,
    project: ProjectOption = Path("."),
) -> None:
    """Run every gate (contract, build, tests, runtime) on the working tree. No model needed."""
    from shipyard import cli_verify

    cli_verify.run(
        project, spec, base, fmt, as_json, junit, progress, use_cache=not no_cache, html=html
    )


@app.command()
def init(
    project: ProjectOption = Path("."),
    force: Annotated[bool, typer.Option("--force", help="Overwrite shipyard.toml.")] = False,
    agent: Annotated[
        str | None,
        typer.Option("--agent", help="Also add the Stop hook for claude, codex, gemini or cursor."),
    ] = None,
) -> None:
    """Detect the project (Python/Node), write shipyard.toml, a spec.yaml skeleton, .shipyard/."""
    from shipyard.init import init_agent, init_project

    try:
        if agent is not None:
            init_agent(project, agent, force=force)
            return
        written = init_project(project, force=force)
    except ShipyardError as exc:
        fail(exc)
    for path, text in written:
        print(f"wrote {path}:\n\n{text}")
    if len(written) == 1:
        print(
            "spec.yaml: kept as it is"
            if (project / "spec.yaml").exists()
            else "spec.yaml: not written (no test, app or command found to check)"
        )


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def hook(
    agent: Annotated[
        str, typer.Argument(help="claude, codex, gemini or cursor.", show_default=False)
    ] = "",
) -> None:
    """The gates as the agent's Stop hook: reads its event on stdin, answers in its protocol."""
    from shipyard.hooks.cli import main as hook_main

    hook_main(agent)


@app.command()
def run(
    task: Annotated[str, typer.Argument(help="What to build, in words.")],
    spec: Annotated[
        Path | None, typer.Option("--spec", help="Use this spec; skips the planner.")
    ] = None,
    model: Annotated[
        str | None, typer.Option("--model", help="provider:model for every role.")
    ] = None,
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help="Do not ask to confirm the spec.")
    ] = False,
    merge: Annotated[
        bool, typer.Option("--merge", help="Fast-forward your branch when shipped, if safe.")
    ] = False,
    naive: Annotated[
        bool,
        typer.Option(
            "--naive",
            help="Ship what the implementer submits: no gates, review, diagnosis or knowledge "
            "(the baseline of `shipyard bench`).",
        ),
    ] = False,
    implementer: Annotated[
        str | None,
        typer.Option(
            "--implementer",
            help='Who writes the code: model (default), claude-code, codex, aider, cmd:"…".',
        ),
    ] = None,
    project: ProjectOption = Path("."),
) -> None:
    """The whole loop: spec, implement in a worktree, verify, review, ship (or blocked)."""
    from shipyard import cli_runs

    cli_runs.start(task, spec, model, yes, merge, project, implementer, naive=naive)


@app.command()
def resume(
    run_id: Annotated[str, typer.Argument(metavar="RUN", help="The run id (or its start).")],
    project: ProjectOption = Path("."),
) -> None:
    """Continue a run from its last completed step (after a crash, a pause, Ctrl-C)."""
    from shipyard import cli_runs

    cli_runs.resume(run_id, project)


@app.command()
def status(
    project: ProjectOption = Path("."),
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """The runs of this project, newest first."""
    from shipyard import cli_runs

    cli_runs.status(project, as_json)


@app.command()
def log(
    run_id: Annotated[str, typer.Argument(metavar="RUN")],
    project: ProjectOption = Path("."),
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Every event of a run, in order."""
    from shipyard import cli_runs

    cli_runs.log(run_id, project, as_json)


@app.command()
def report(
    run_id: Annotated[str, typer.Argument(metavar="RUN")],
    project: ProjectOption = Path("."),
    html: Annotated[
        bool, typer.Option("--html", help="Write one self-contained HTML file; print its path.")
    ] = False,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="With --html: write here (default: the run folder)."),
    ] = None,
) -> None:
    """The report of a run: attempts, gates, review, diagnosis, usage."""
    if html or output is not None:
        from shipyard import cli_web

        cli_web.report_html(run_id, project, output, html)
        return
    from shipyard import cli_runs

    cli_runs.show_report(run_id, project)


@app.command()
def serve(
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="0: a free one.")] = 8737,
    host: Annotated[
        str, typer.Option("--host", help="Another address than 127.0.0.1 requires a token.")
    ] = "127.0.0.1",
    project: ProjectOption = Path("."),
    batch_dir: Annotated[
        Path | None,
        typer.Option("--batch", help="A `shipyard batch --out` folder: its tasks instead."),
    ] = None,
) -> None:
    """A local dashboard over this project's runs, verifies, knowledge and metrics (read-only)."""
    from shipyard import cli_web

    cli_web.serve(project, host, port, batch_dir)


@app.command()
def stats(
    project: ProjectOption = Path("."),
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    batch_dir: Annotated[
        Path | None,
        typer.Option("--batch", help="A `shipyard batch --out` folder: its tasks' outcomes."),
    ] = None,
) -> None:
    """Delivery metrics over every run of this project: first-pass rates, attempts, tokens."""
    if batch_dir is not None:
        from shipyard import cli_batch

        cli_batch.stats(batch_dir, as_json)
        return
    from shipyard import cli_runs

    cli_runs.stats(project, as_json)


@app.command()
def batch(
    suite: Annotated[Path, typer.Argument(help="The suite file (YAML).")],
    engine: cli_bench.Engine = "local",
    address: cli_bench.Address = None,
    workers: cli_bench.Workers = 2,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Batch database and evidence (default SUITE.batch/)."),
    ] = None,
    redo: cli_bench.Redo = False,
) -> None:
    """Many runs: every task of a suite through `shipyard run`, results in one database."""
    from shipyard import cli_batch

    cli_batch.batch(suite, engine, address, workers, out, redo)


app.command("bench")(cli_bench.command)


memory_app = typer.Typer(
    help="The project's knowledge: what runs verified, decisions, pitfalls, conventions, facts.",
    no_args_is_help=True,
)
app.add_typer(memory_app, name="memory")
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]


@memory_app.command("list")
def memory_list(
    kind: Annotated[str | None, typer.Option("--kind", help="Only this kind.")] = None,
    every: Annotated[bool, typer.Option("--all", help="Superseded entries too.")] = False,
    as_json: JsonOption = False,
    project: ProjectOption = Path("."),
) -> None:
    """Every current entry, by kind."""
    from shipyard import cli_memory

    cli_memory.list_entries(project, kind, every, as_json)


@memory_app.command("search")
def memory_search(
    query: Annotated[str, typer.Argument(help="Words to look for.")],
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000)] = 20,
    as_json: JsonOption = False,
    project: ProjectOption = Path("."),
) -> None:
    """Entries matching the words, best first (full-text search)."""
    from shipyard import cli_memory

    cli_memory.search(project, query, limit, as_json)


@memory_app.command("add")
def memory_add(
    text: Annotated[str, typer.Argument(help="What to remember.")],
    kind: Annotated[str, typer.Option("--kind", help="fact, convention or decision.")] = "fact",
    key: Annotated[
        str | None, typer.Option("--key", help="A subject: a later entry with it supersedes this.")
    ] = None,
    as_json: JsonOption = False,
    project: ProjectOption = Path("."),
) -> None:
    """Add a fact (or a convention, or a decision) by hand."""
    from shipyard import cli_memory

    cli_memory.add(project, text, kind, key, as_json)


@memory_app.command("forget")
def memory_forget(
    entry_id: Annotated[int, typer.Argument(metavar="ID", help="The entry's number.")],
    as_json: JsonOption = False,
    project: ProjectOption = Path("."),
) -> None:
    """Delete an entry."""
    from shipyard import cli_memory

    cli_memory.forget(project, entry_id, as_json)


@memory_app.command("export")
def memory_export(
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here (default: stdout).")
    ] = None,
    project: ProjectOption = Path("."),
) -> None:
    """The knowledge as Markdown, to read and review (and import back)."""
    from shipyard import cli_memory

    cli_memory.export(project, output)


@memory_app.command("import")
def memory_import(
    file: Annotated[Path, typer.Argument(help="A file written by `shipyard memory export`.")],
    as_json: JsonOption = False,
    project: ProjectOption = Path("."),
) -> None:
    """Read an export back: new entries added, the same ones merged, changed ones superseded."""
    from shipyard import cli_memory

    cli_memory.import_file(project, file, as_json)


@app.command()
def mcp() -> None:
    """Serve the gates and the knowledge as MCP tools over stdio (JSON-RPC on stdout only)."""
    try:
        from shipyard.mcp_server import serve
    except ShipyardError as exc:  # the mcp extra is not installed
        fail(exc)
    serve()
