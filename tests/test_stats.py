"""``shipyard stats``: delivery metrics from the ledger, each with its numerator and denominator.

The unit tests write runs through the Ledger API the way the loop does (gate rows per verify,
usage rows, events, the final state); the last test makes two real runs with scripted models."""

from __future__ import annotations

from pathlib import Path

from conftest import run_cli
from fixtures.loop_support import (
    GOOD_SESSION,
    WRONG,
    add_multiply,
    fix_multiply,
    make_project,
    script,
    shipyard_run,
    spec_file,
    submit,
    write_test,
)
from shipyard.loop.state import RunState
from shipyard.loop.step import Step
from shipyard.results import CheckResult, GateResult
from shipyard.stats import compute
from shipyard.store.ledger import Event, Ledger, UsageRow


def gate(name: str, *checks: tuple[str, str, str]) -> dict:
    """GateResult.to_json() of a gate with (id, kind, status) checks."""
    results = tuple(CheckResult(id=i, kind=k, status=s) for i, k, s in checks)  # type: ignore[arg-type]
    return GateResult(name=name, checks=results).to_json()


def verify(build: dict, tests: dict, runtime: dict) -> list[dict]:
    return [gate("contract"), build, tests, runtime]


def add_run(
    ledger: Ledger,
    run_id: str,
    *,
    verifies: list[tuple[str, list[dict]]] = (),  # type: ignore[assignment]
    end: str = "running",
    attempt: int = 1,
    tokens: list[tuple[int, int]] = (),  # type: ignore[assignment]
    diagnosis: bool = False,
) -> None:
    ledger.create_run(
        run_id=run_id, task=f"task {run_id}", base_sha="0" * 40, branch=f"shipyard/{run_id}",
        worktree=f"/tmp/{run_id}", options={}, state=RunState(),
    )  # fmt: skip
    for n, (verify_id, gates) in enumerate(verifies, 1):
        step = Step(gates=[(verify_id, g) for g in gates])
        ledger.commit(run_id, RunState(stage="verify", attempt=n, verify_runs=n), step)
    events = [Event(kind="diagnosis", summary="diagnosis (90%): adds")] if diagnosis else []
    usage = [UsageRow(role="implementer", model="m", input_tokens=i, output_tokens=o)
             for i, o in tokens]  # fmt: skip
    stage = end if end in ("shipped", "blocked") else "implement"
    ledger.commit(run_id, RunState(stage=stage, attempt=attempt), Step(usage=usage, events=events))
    if end == "paused":
        ledger.release(run_id, "paused", "no model")


BUILD_OK = gate("build", ("python -m compileall", "build", "passed"))
BUILD_FAILED = gate("build", ("python -m compileall", "build", "failed"))
NO_BUILD = gate("build")  # no build commands: no checks, which is passed


def required(*statuses: str) -> dict:
    return gate("tests", *((f"t{i}", "required", s) for i, s in enumerate(statuses)))


def runtime(*checks: tuple[str, str]) -> dict:
    return gate("runtime", *((f"{kind}{i}", kind, s) for i, (kind, s) in enumerate(checks)))


def five_runs(project: Path) -> Ledger:
    ledger = Ledger.open(project, RunState.model_validate_json)
    # a: right first time
    add_run(ledger, "a", verifies=[("verify-1", verify(
        BUILD_OK, required("passed"),
        runtime(("http", "passed"), ("cli", "passed"), ("ui", "passed"))))],
        end="shipped", attempt=1, tokens=[(100, 50)])  # fmt: skip
    # b: the build failed on the first verify, then passed. Its verify ids sort the other way
    # round: verifies are ordered by when they were written, not by name.
    add_run(ledger, "b", verifies=[
        ("z-verify", verify(BUILD_FAILED, required("not_run"),
                            runtime(("http", "not_run"), ("ui", "not_run")))),
        ("a-verify", verify(BUILD_OK, required("passed"),
                            runtime(("http", "passed"), ("app", "passed")))),
    ], end="shipped", attempt=2, tokens=[(300, 100), (200, 0)])  # fmt: skip
    # c: one of two required tests failed first, a ui flow kept failing, diagnosed, blocked
    add_run(ledger, "c", verifies=[
        ("verify-1", verify(NO_BUILD, required("failed", "passed"),
                            runtime(("http", "passed"), ("ui", "failed")))),
        ("verify-2", verify(NO_BUILD, required("failed", "passed"),
                            runtime(("http", "passed"), ("cli", "failed"), ("ui", "failed")))),
    ], end="blocked", attempt=3, tokens=[(1000, 1000)], diagnosis=True)  # fmt: skip
    # d: paused before any verify
    add_run(ledger, "d", end="paused", tokens=[(10, 10)])
    # e: still running; no required tests in its spec; diagnosed, but not finished
    add_run(ledger, "e", verifies=[("verify-1", verify(
        BUILD_OK, gate("tests", ("t::x", "test", "passed"), ("suite", "suite", "passed")),
        gate("runtime")))], diagnosis=True)  # fmt: skip
    return ledger


def test_each_metric_over_runs_written_through_the_ledger(tmp_path: Path) -> None:
    doc = compute(five_runs(tmp_path)).to_json()
    assert doc["schema"] == "shipyard.stats/1"
    assert doc["runs"] == {
        "total": 5, "shipped": 2, "blocked": 1, "unfinished": 2, "paused": 1, "running": 1,
    }  # fmt: skip
    # a, c (no build commands) and e passed the build on their first verify; b did not
    assert doc["first_pass_build_rate"] == {"value": 0.75, "numerator": 3, "denominator": 4}
    # a, b and c have required tests; only a passed all of them on its first verify
    assert doc["required_tests_first_verify"] == {
        "value": 0.3333, "numerator": 1, "denominator": 3,
    }  # fmt: skip
    # last verifies only: a http+cli, b http+app, c http passed and cli failed
    assert doc["runtime_checks_passing"] == {"value": 0.8333, "numerator": 5, "denominator": 6}
    assert doc["ui_flows_passing"] == {"value": 0.5, "numerator": 1, "denominator": 2}
    assert doc["attempts_per_shipped_run"] == {
        "value": 1.5, "numerator": 3, "denominator": 2, "min": 1, "max": 2,
    }  # fmt: skip
    # finished runs are a, b, c: e's diagnosis does not count until it finishes
    assert doc["diagnosis_rate"] == {"value": 0.3333, "numerator": 1, "denominator": 3}
    assert doc["blocked_rate"] == {"value": 0.3333, "numerator": 1, "denominator": 3}
    # a 150 + b 600; the blocked and paused runs' tokens are not counted
    assert doc["tokens_per_shipped_run"] == {"value": 375.0, "numerator": 750, "denominator": 2}


def test_a_figure_with_no_base_is_null_with_base_zero(tmp_path: Path) -> None:
    ledger = Ledger.open(tmp_path, RunState.model_validate_json)
    empty = compute(ledger).to_json()
    assert empty["runs"]["total"] == 0
    for name, figure in empty.items():
        if name not in ("schema", "runs"):
            assert figure["value"] is None and figure["denominator"] == 0, name
    assert empty["attempts_per_shipped_run"]["min"] is None
    # one blocked run without a verify: rates over finished runs have a base, the rest do not
    add_run(ledger, "x", end="blocked", attempt=2, tokens=[(5, 5)])
    doc = compute(ledger).to_json()
    assert doc["blocked_rate"] == {"value": 1.0, "numerator": 1, "denominator": 1}
    assert doc["diagnosis_rate"] == {"value": 0.0, "numerator": 0, "denominator": 1}
    assert doc["first_pass_build_rate"] == {"value": None, "numerator": 0, "denominator": 0}
    assert doc["tokens_per_shipped_run"] == {"value": None, "numerator": 0, "denominator": 0}


def test_the_command_prints_one_line_per_metric_or_says_there_are_no_runs(
    tmp_path: Path,
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    result = run_cli("stats", "-C", str(empty), cwd=tmp_path)
    assert result.code == 0, result.stderr
    assert result.stdout.startswith("no runs yet")
    result = run_cli("stats", "--json", "--project", str(empty), cwd=tmp_path)
    assert result.code == 0 and result.json["runs"]["total"] == 0

    (tmp_path / "five").mkdir()
    five_runs(tmp_path / "five").close()
    result = run_cli("stats", "--project", str(tmp_path / "five"), cwd=tmp_path)
    assert result.code == 0, result.stderr
    lines = [" ".join(line.split()) for line in result.stdout.splitlines()]
    assert lines == [
        "runs 5 2 shipped, 1 blocked, 2 unfinished",
        "first-pass build rate 3/4 75%",
        "required tests, first verify 1/3 33%",
        "runtime checks passing 5/6 83%",
        "ui flows passing 1/2 50%",
        "attempts per shipped run 3/2 1.50 (min 1, max 2)",
        "diagnosis rate 1/3 33%",
        "blocked rate 1/3 33%",
        "tokens per shipped run 750/2 375",
        "knowledge entries per run 0/5 0.0",
        "failures with a known pitfall 0/0 n/a",
        "attempts, with knowledge 0/0 n/a",
        "attempts, without 3/2 1.50 (min 1, max 2)",
        "tokens, with knowledge 0/0 n/a",
        "tokens, without 750/2 375",
    ]


def test_stats_over_two_real_runs(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    spec = spec_file(tmp_path)
    first = shipyard_run(project, script(tmp_path, implementer=GOOD_SESSION), spec)
    assert first.code == 0, first.stdout + first.stderr
    # the second run's first submission multiplies by adding: the required test fails once
    session = [add_multiply(WRONG), write_test(), submit(), fix_multiply(), submit("fixed")]
    second = shipyard_run(project, script(tmp_path, implementer=session), spec)
    assert second.code == 0, second.stdout + second.stderr
    assert "2 attempt(s)" in second.stdout

    result = run_cli("stats", "--json", "-C", str(project.path), cwd=tmp_path)
    assert result.code == 0, result.stderr
    doc = result.json
    assert doc["runs"] == {
        "total": 2, "shipped": 2, "blocked": 0, "unfinished": 0, "paused": 0, "running": 0,
    }  # fmt: skip
    # no build commands in shipyard.toml: the build gate has no checks and passes
    assert doc["first_pass_build_rate"] == {"value": 1.0, "numerator": 2, "denominator": 2}
    assert doc["required_tests_first_verify"] == {
        "value": 0.5, "numerator": 1, "denominator": 2,
    }  # fmt: skip
    assert doc["attempts_per_shipped_run"] == {
        "value": 1.5, "numerator": 3, "denominator": 2, "min": 1, "max": 2,
    }  # fmt: skip
    assert doc["blocked_rate"] == {"value": 0.0, "numerator": 0, "denominator": 2}
    assert doc["diagnosis_rate"] == {"value": 0.0, "numerator": 0, "denominator": 2}
    assert doc["runtime_checks_passing"]["denominator"] == 0
    # the usage table agrees with the runs' own totals
    runs = run_cli("status", "--json", "-C", str(project.path), cwd=tmp_path).json
    tokens = doc["tokens_per_shipped_run"]
    assert tokens["numerator"] == sum(r["tokens"] for r in runs)
    assert tokens["denominator"] == 2
