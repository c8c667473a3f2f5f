"""``shipyard mcp``: the gates and the knowledge as MCP tools, over stdio.

Tools: ``verify`` (the verify JSON document as structured output, a progress notification per
gate), ``verify_start``/``verify_result`` (for verifies longer than a client's tool timeout),
``spec_check``, ``memory_search`` and ``memory_add``. Bad input is answered as a tool error
(``isError``) that says what to fix; the server goes on serving. Only JSON-RPC is written to
stdout: verifies and memory commands run as child processes whose output goes to files.
"""

from __future__ import annotations

import os
import secrets
import shutil
import sys
from pathlib import Path
from typing import Annotated, Any

from shipyard.exceptions import EnvironmentProblem
from shipyard.mcp_schema import JobDocument, MemoryDocument, SpecReport, VerifyDocument

try:
    import anyio
    from mcp.server.mcpserver import Context, MCPServer
    from mcp.server.mcpserver.exceptions import ToolError
    from mcp.types import CallToolResult, TextContent, ToolAnnotations
    from pydantic import Field
except ImportError as exc:  # the optional extra
    raise EnvironmentProblem(
        "shipyard mcp needs the MCP SDK: pip install 'shipyard[mcp]' (or uv sync --extra mcp)"
    ) from exc

from shipyard.mcp_jobs import Job, JobRefused, Jobs

POLL = 0.2
MAX_WAIT = 300.0
MEMORY_TIMEOUT = 60.0
INSTRUCTIONS = """Shipyard checks that a change works by running it: the build, the tests read
test by test, the app probed over HTTP and the command line, browser flows. Call `verify` before
you say a change is done, and fix what it reports; its document names each failing check, why,
and the evidence file. For a verify longer than your tool timeout, call `verify_start`, then
`verify_result` with the job id until its status is `done`. `spec_check` validates a spec and
shows which acceptance ids no check covers. `memory_search` finds what earlier runs of this
project learned (commands that work, pitfalls and their fixes, conventions)."""

ProjectArg = Annotated[str, Field(description="The project folder (default: the server's).")]
SpecArg = Annotated[
    str | None, Field(description="The spec YAML, relative to the project (default spec.yaml).")
]
BaseArg = Annotated[
    str | None,
    Field(description="A base revision: required tests must fail there, none weakened."),
]


def serve() -> None:
    """Run the server on stdin/stdout until the client closes it."""
    jobs = Jobs()
    try:
        build(jobs).run("stdio")
    finally:
        jobs.close()


def build(jobs: Jobs) -> MCPServer[Any]:
    from shipyard import __version__

    server: MCPServer[Any] = MCPServer(
        "shipyard", version=__version__, instructions=INSTRUCTIONS, log_level="WARNING"
    )
    read_only = ToolAnnotations(read_only_hint=True, open_world_hint=False)

    @server.tool(annotations=ToolAnnotations(open_world_hint=False))
    async def verify(
        ctx: Context, project: ProjectArg = ".", spec: SpecArg = None, base: BaseArg = None
    ) -> Annotated[CallToolResult, VerifyDocument]:
        """Run every gate (contract, build, tests, runtime) on the project's working tree and
        return the verify document: verdict, and each gate's checks with status, message and
        evidence. A progress notification is sent as each gate starts and ends."""
        job = _start(jobs, project, spec, base)
        try:
            await _follow(job, ctx)
        finally:
            if not job.done():  # the call was cancelled: stop the verify with it
                with anyio.CancelScope(shield=True):
                    await anyio.to_thread.run_sync(job.stop)
        return _verdict_result(job)

    @server.tool(annotations=ToolAnnotations(open_world_hint=False))
    async def verify_start(
        project: ProjectArg = ".", spec: SpecArg = None, base: BaseArg = None
    ) -> JobDocument:
        """Start a verify in the background and return its job id at once; read its verdict
        with verify_result. For verifies longer than the client's tool timeout."""
        job = _start(jobs, project, spec, base)
        return _job_document(job)

    @server.tool(annotations=read_only)
    async def verify_result(
        job: Annotated[str, Field(description="The job id verify_start returned.")],
        wait: Annotated[
            float, Field(ge=0, le=MAX_WAIT, description="Seconds to wait for it to finish.")
        ] = 0,
    ) -> Annotated[CallToolResult, JobDocument]:
        """The state of a verify started with verify_start: running (with the gates done so
        far), or done with the verify document under `result`."""
        try:
            found = jobs.get(job)
        except JobRefused as exc:
            raise ToolError(str(exc)) from exc
        with anyio.move_on_after(wait):
            while not found.done():
                await anyio.sleep(POLL)
        doc = _job_document(found)
        if not found.done():
            return CallToolResult(
                content=[_text(f"running: {doc.progress[-1:] or ['starting']}")],
                structured_content=doc.model_dump(mode="json", by_alias=True),
            )
        outcome = found.outcome()
        if not outcome.ok:
            return _error(
                outcome.text,
                {
                    **doc.model_dump(mode="json", by_alias=True),
                    "result": None,
                    "error": outcome.document,
                },
            )
        doc.result = VerifyDocument.model_validate(outcome.document)
        return CallToolResult(
            content=[_text(outcome.text)],
            structured_content=doc.model_dump(mode="json", by_alias=True),
        )

    @server.tool(annotations=read_only)
    async def spec_check(
        project: ProjectArg = ".",
        spec: SpecArg = None,
        text: Annotated[
            str | None, Field(description="Spec YAML to check instead of a file (a draft).")
        ] = None,
    ) -> SpecReport:
        """Validate a spec (file or text) and show its coverage: which checks cover each
        acceptance id, and the ids no check covers. An invalid spec gives valid=false and the
        error naming file, field and line."""
        from shipyard.mcp_schema import spec_report

        root = _project(project)
        path = None if text is not None else _spec_path(root, spec) or root / "spec.yaml"
        return spec_report(path, text)

    @server.tool(annotations=read_only)
    async def memory_search(
        query: Annotated[str, Field(description="Words to look for.")],
        project: ProjectArg = ".",
        limit: Annotated[int, Field(ge=1, le=100)] = 10,
    ) -> MemoryDocument:
        """What this project's runs learned, best match first: commands that worked, pitfalls
        and their fixes, decisions, conventions, facts."""
        args = ["memory", "search", "--json", f"--limit={limit}"]
        return await _memory(jobs, project, [*args, "--project", "{project}", "--", query])

    @server.tool(annotations=ToolAnnotations(open_world_hint=False, destructive_hint=False))
    async def memory_add(
        text: Annotated[str, Field(description="What to remember.")],
        project: ProjectArg = ".",
        kind: Annotated[str, Field(description="fact, convention or decision.")] = "fact",
        key: Annotated[
            str | None, Field(description="A subject: a later entry with it supersedes this.")
        ] = None,
    ) -> MemoryDocument:
        """Add a fact, convention or decision to the project's knowledge."""
        args = ["memory", "add", "--json", f"--kind={kind}", "--project", "{project}"]
        if key is not None:
            args.append(f"--key={key}")
        return await _memory(jobs, project, [*args, "--", text])

    return server


def _project(project: str) -> Path:
    path = Path(project).expanduser()
    path = (path if path.is_absolute() else Path.cwd() / path).resolve()
    if not path.is_dir():
        raise ToolError(f"project: {path} is not a folder")
    return path


def _spec_path(project: Path, spec: str | None) -> Path | None:
    if spec is None:
        return None
    path = Path(spec).expanduser()
    return path if path.is_absolute() else project / path


def _start(jobs: Jobs, project: str, spec: str | None, base: str | None) -> Job:
    root = _project(project)
    try:
        return jobs.start(root, _spec_path(root, spec), base)
    except JobRefused as exc:
        raise ToolError(str(exc)) from exc


async def _follow(job: Job, ctx: Context) -> None:
    sent = 0
    while True:
        finished = job.done()
        steps = job.progress()
        for step in steps[sent:]:
            await ctx.report_progress(step.value, step.total, step.message)
        sent = len(steps)
        if finished:
            return
        await anyio.sleep(POLL)


def _verdict_result(job: Job) -> CallToolResult:
    outcome = job.outcome()
    if not outcome.ok:
        return _error(outcome.text, outcome.document)
    return CallToolResult(content=[_text(outcome.text)], structured_content=outcome.document)


def _job_document(job: Job) -> JobDocument:
    import time

    return JobDocument(
        job=job.id,
        status="done" if job.done() else "running",
        project=str(job.project),
        run_id=job.run_id(),
        elapsed=round(time.monotonic() - job.started, 3),
        progress=[p.message for p in job.progress()],
    )


async def _memory(jobs: Jobs, project: str, args: list[str]) -> MemoryDocument:
    from shipyard import process

    root = _project(project)
    argv = [sys.executable, "-m", "shipyard", *(str(root) if a == "{project}" else a for a in args)]
    folder = jobs.folder / f"memory-{secrets.token_hex(6)}"
    folder.mkdir()
    out, err = folder / "stdout.json", folder / "stderr.log"

    def call() -> Any:
        return process.run(
            argv,
            cwd=root,
            env=dict(os.environ),
            timeout=MEMORY_TIMEOUT,
            log=out,
            stderr_log=err,
            what="shipyard memory",
        )

    try:
        result = await anyio.to_thread.run_sync(call)
        if result.exit_code != 0:
            message = process.tail_of(err, 10).removeprefix("shipyard: ").strip()
            raise ToolError(message or f"shipyard memory ended with exit {result.exit_code}")
        return MemoryDocument.model_validate_json(out.read_bytes())
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _text(text: str) -> TextContent:
    return TextContent(type="text", text=text)


def _error(text: str, document: dict[str, Any]) -> CallToolResult:
    return CallToolResult(content=[_text(text)], structured_content=document, is_error=True)
