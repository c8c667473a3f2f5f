"""The implementer seam: a run ships through an implementer that is not the in-process model.

``FilesImplementer`` is a second, trivial implementation of ``Implementer``: each attempt it
writes the files it was given for that attempt, in two steps (write, then submit), and reports
no token counts. The run is real (git worktree, ledger, gates, a scripted reviewer); there is no
model for the implementer role at all.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from conftest import git
from fixtures.loop_support import (
    CALC,
    RIGHT,
    TEST_MULTIPLY,
    WRONG,
    LedgerView,
    make_project,
    script,
    spec_file,
)
from shipyard import stats
from shipyard.exceptions import InputError
from shipyard.loop import implementers, report
from shipyard.loop.context import RunContext, RunOptions
from shipyard.loop.implementers import Brief
from shipyard.loop.loop import drive
from shipyard.loop.setup import RUN_VARIABLE, resume_run, start_run
from shipyard.loop.state import RunState
from shipyard.loop.step import Step
from shipyard.loop.usage import add_row
from shipyard.store import migrations
from shipyard.store.db import open_db
from shipyard.store.ledger import Ledger
from shipyard.store.rows import Event, UsageRow

CALC_WRONG = CALC.replace("    return a + b\n", WRONG)
CALC_RIGHT = CALC.replace("    return a + b\n", RIGHT)


@dataclass
class FilesImplementer:
    """Writes ``attempts[n - 1]`` (path → content) in attempt n, then submits."""

    attempts: list[dict[str, str]]
    briefs: list[Brief] = field(default_factory=list)
    after_writing: Callable[[Path, int], None] | None = None
    """Called with the worktree and the attempt once its files are written."""
    name: str = "files"
    step_budgets: bool = False

    def preflight(self) -> str:
        return f"writes the files of {len(self.attempts)} attempt(s)"

    def advance(self, ctx: RunContext, state: RunState) -> tuple[RunState, Step]:
        state, step = state.model_copy(deep=True), Step()
        if state.step == 0:
            implementers.open_attempt(state, step)
            told = implementers.brief(ctx, state, step)
            self.briefs.append(told)
            # an attempt past the scripted ones means an earlier one failed that should not have
            assert told.attempt <= len(self.attempts), "\n".join(told.feedback)
            files = self.attempts[told.attempt - 1]
            for path, content in files.items():
                (told.workdir / path).parent.mkdir(parents=True, exist_ok=True)
                (told.workdir / path).write_text(content)
            if self.after_writing is not None:
                self.after_writing(told.workdir, told.attempt)
            step.event("agent", f"wrote {', '.join(files)}", files=sorted(files))
            state.feedback = []
            state.agent_session = f"files-session-{told.attempt}"
            state.step = 1
            return state, step
        row = UsageRow(role="implementer", model="files", input_tokens=None, output_tokens=None)
        add_row(state, step, row)
        state.submitted = f"wrote attempt {state.attempt}'s files"
        state.stage = "verify"
        step.event("submit", f"submitted: {state.submitted}")
        return state, step


@pytest.fixture
def files_implementer(monkeypatch: pytest.MonkeyPatch) -> FilesImplementer:
    monkeypatch.setenv(RUN_VARIABLE, "")  # start_run sets it for the run's processes
    test_file = {"tests/test_multiply.py": TEST_MULTIPLY}
    made = FilesImplementer([{"calc.py": CALC_WRONG, **test_file}, {"calc.py": CALC_RIGHT}])
    monkeypatch.setitem(implementers.IMPLEMENTERS, "files", lambda: made)
    return made


def test_a_run_ships_through_a_second_implementer_with_no_implementer_model(
    tmp_path: Path, files_implementer: FilesImplementer
) -> None:
    # one step per attempt allowed: the step budgets bound only an implementer that takes them
    project = make_project(tmp_path, steps=1, idle=2)
    said: list[Event] = []
    scripted = script(tmp_path)  # a reviewer and a diagnoser, no implementer replies
    options = RunOptions(
        spec_file=str(spec_file(tmp_path)), model=f"script:{scripted}", yes=True,
        implementer="files",
    )  # fmt: skip
    ctx = start_run(project.path, "multiply two numbers", options, say=said.append,
                    confirm=lambda _s: True)  # fmt: skip
    assert set(ctx.models) == {"reviewer", "diagnoser"}
    final = drive(ctx, ctx.ledger.run(ctx.run_id).state)
    ctx.ledger.release(ctx.run_id, final.stage, final.reason)
    assert final.stage == "shipped", final.reason
    assert final.attempt == 2 and final.agent_session == "files-session-2"

    # the brief: the locked spec, the commands, and on attempt 2 what failed on attempt 1
    first, second = files_implementer.briefs
    assert (
        first.spec_text == ctx.spec_lock.read_text()
        and "multiply(3, 4) returns 12" in first.spec_text
    )
    assert "- test: python -m pytest" in first.commands and first.feedback == []
    assert first.workdir == ctx.workdir and first.task == "multiply two numbers"
    assert second.attempt == 2
    assert "Your last submission did not pass" in second.feedback[0]
    assert "assert 7 == 12" in second.feedback[0]

    ledger = LedgerView(project)
    assert [a["outcome"] for a in ledger.attempts()] == ["failed", "shipped"]
    assert [e["summary"] for e in ledger.events("implementer")] == [
        "implementer files: writes the files of 2 attempt(s)"
    ]
    agent = [e["summary"] for e in ledger.events("agent")]
    assert agent == ["wrote calc.py, tests/test_multiply.py", "wrote calc.py"]
    assert "implementer" not in ledger.conversations()
    assert "return a * b" in git(project.path, "show", f"{ledger.run()['branch']}:calc.py")
    assert ledger.run()["options"].count('"implementer": "files"') == 1

    # tokens not reported stay unknown: NULL in the ledger, left out of the figures, said so
    rows = ledger._rows("SELECT input_tokens, output_tokens FROM usage WHERE role = 'implementer'")
    assert [tuple(r) for r in rows] == [(None, None), (None, None)]
    assert final.usage.unreported == 2
    figures = stats.compute(ctx.ledger)
    assert figures.runs.shipped == 1
    assert figures.tokens_per_shipped_run.denominator == 0
    assert figures.tokens_per_shipped_run.value is None
    text = report.build(ctx.ledger, ctx.ledger.run(ctx.run_id))
    assert "- implementer (files): unreported in, unreported out" in text
    assert "(2 did not report tokens)" in text
    ctx.ledger.close()


def test_a_resumed_run_keeps_its_implementer(
    tmp_path: Path, files_implementer: FilesImplementer
) -> None:
    project = make_project(tmp_path)
    options = RunOptions(
        spec_file=str(spec_file(tmp_path)), model=f"script:{script(tmp_path)}", yes=True,
        implementer="files",
    )  # fmt: skip
    ctx = start_run(project.path, "multiply", options, say=lambda _e: None, confirm=lambda _s: True)
    ctx.ledger.release(ctx.run_id, "paused", "stopped before the first step")
    ctx.ledger.close()
    resumed, state = resume_run(
        project.path, ctx.run_id, say=lambda _e: None, confirm=lambda _s: True
    )
    assert resumed.implementer is files_implementer and set(resumed.models) == {
        "reviewer", "diagnoser"
    }  # fmt: skip
    assert resumed.options.implementer == "files"
    final = drive(resumed, state)
    resumed.ledger.release(resumed.run_id, final.stage, final.reason)
    resumed.ledger.close()
    assert final.stage == "shipped", final.reason


def test_an_unknown_implementer_is_bad_input() -> None:
    with pytest.raises(InputError, match="unknown implementer 'nobody'; known: model") as caught:
        implementers.resolve("nobody")
    assert caught.value.field == "implementer"
    assert implementers.resolve(None).name == "model"


def test_old_options_and_states_read_as_before() -> None:
    """A run started before implementers had names: the model, and usage all reported."""
    old = {"model": None, "yes": True, "merge": False, "spec_file": None, "start_branch": None}
    assert RunOptions(**old).implementer is None and RunOptions(**old).to_json() == old
    state = RunState.model_validate_json(
        '{"stage": "implement", "usage": {"requests": 2, '
        '"input_tokens": 5, "output_tokens": 1, "cost": 0.0}}'
    )
    assert state.usage.unreported == 0 and state.agent_session is None
    assert state.usage.tokens == 6


def test_a_ledger_of_schema_2_keeps_its_usage_and_takes_unknown_tokens(tmp_path: Path) -> None:
    path = tmp_path / "shipyard.db"
    old = sqlite3.connect(path)
    for script_ in migrations.MIGRATIONS[:2]:
        old.executescript(script_)
    old.execute("PRAGMA user_version = 2")
    old.execute(
        "INSERT INTO runs VALUES ('r-1', 't', 'running', 1, 1, 'abc', 'b', '/w', NULL,"
        " '{\"stage\": \"implement\"}', '{}', NULL, NULL)"
    )
    old.execute("INSERT INTO usage VALUES (7, 'r-1', 1, 'implementer', 'm', 5, 1, NULL, 1)")
    old.commit()
    old.close()
    ledger = Ledger(open_db(path), RunState.model_validate_json)
    assert ledger.conn.execute("PRAGMA user_version").fetchone()[0] == 3
    step = Step(usage=[UsageRow(role="implementer", model="agent", input_tokens=None,
                                output_tokens=None)])  # fmt: skip
    ledger.commit("r-1", RunState(stage="implement"), step)
    rows = ledger.conn.execute("SELECT id, model, input_tokens, output_tokens FROM usage")
    assert [tuple(r) for r in rows] == [(7, "m", 5, 1), (8, "agent", None, None)]
    by_role = {(u.role, u.model): (u.input_tokens, u.output_tokens)
               for u in ledger.usage_by_role("r-1")}  # fmt: skip
    assert by_role == {("implementer", "m"): (5, 1), ("implementer", "agent"): (None, None)}
    assert [f.tokens for f in ledger.run_figures()] == [None]
    ledger.close()


def test_the_implementer_is_named_once_in_the_progress_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from shipyard import cli_runs

    cli_runs.say(Event(kind="implementer", summary="implementer files: writes the files"))
    cli_runs.say(Event(kind="verify", summary="verify 1: passed"))
    assert capsys.readouterr().out == (
        "implementer files: writes the files\nverify    verify 1: passed\n"
    )


def forge_bytecode(workdir: Path, attempt: int) -> None:
    """On attempt 2, a hostile implementer's forged bytecode: the wrong ``multiply`` compiled
    into the ``.pyc`` of the right source, with the source's size and time in its header and
    written a second later, so Python takes it for the source's."""
    import importlib.util
    import os
    import py_compile

    if attempt != 2:
        return
    source = workdir / "calc.py"
    second = int(time.time()) - 100
    decoy = workdir.parent / "decoy" / "calc.py"
    decoy.parent.mkdir(exist_ok=True)
    decoy.write_text(CALC_WRONG)
    assert decoy.stat().st_size == source.stat().st_size
    for path in (source, decoy):
        os.utime(path, (second + 0.1, second + 0.1))
    cached = importlib.util.cache_from_source(str(source))
    timestamp = py_compile.PycInvalidationMode.TIMESTAMP
    py_compile.compile(str(decoy), cfile=cached, doraise=True, invalidation_mode=timestamp)
    os.utime(cached, (second + 2, second + 2))


def test_bytecode_an_implementer_forged_is_not_what_the_gates_run(
    tmp_path: Path, files_implementer: FilesImplementer
) -> None:
    files_implementer.after_writing = forge_bytecode
    project = make_project(tmp_path, steps=1, idle=2)
    scripted = script(tmp_path)
    options = RunOptions(
        spec_file=str(spec_file(tmp_path)), model=f"script:{scripted}", yes=True,
        implementer="files",
    )  # fmt: skip
    ctx = start_run(project.path, "multiply two numbers", options, say=lambda _e: None,
                    confirm=lambda _s: True)  # fmt: skip
    final = drive(ctx, ctx.ledger.run(ctx.run_id).state)
    ctx.ledger.release(ctx.run_id, final.stage, final.reason)
    assert final.stage == "shipped" and final.attempt == 2, final.reason
