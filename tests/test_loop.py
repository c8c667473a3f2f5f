"""The delivery loop end to end: the real CLI on a real project in a temporary git repo, with
scripted models acting the way real models fail."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import git, run_cli
from fixtures.loop_support import (
    APPROVE,
    GOOD_SESSION,
    TEST_MULTIPLY,
    WRONG,
    LedgerView,
    add_multiply,
    call,
    fix_multiply,
    make_project,
    script,
    shipyard_run,
    spec_file,
    submit,
    tree_snapshot,
    write_test,
)


def test_right_first_time_ships_in_one_attempt(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    before = tree_snapshot(project)
    result = shipyard_run(project, script(tmp_path, implementer=GOOD_SESSION), spec_file(tmp_path))
    assert result.code == 0, result.stdout + result.stderr
    assert "shipped (exit 0)" in result.stdout
    assert "1 attempt(s)" in result.stdout
    ledger = LedgerView(project)
    run = ledger.run()
    assert run["status"] == "shipped"
    state = ledger.state()
    assert state["attempt"] == 1 and state["verify_runs"] == 1
    # the commit is on the run's branch, written from the spec; the user's tree is as it was
    branch = run["branch"]
    log = git(project.path, "log", "-1", "--format=%B", branch)
    assert log.startswith("calc.multiply multiplies two numbers")
    assert f"Shipyard-Run: {run['id']}" in log
    shown = git(project.path, "show", f"{branch}:calc.py")
    assert "return a * b" in shown
    assert tree_snapshot(project) == before
    # the reviewer saw the spec, the diff and the evidence, never the implementer's messages
    review = ledger.messages("reviewer-1")
    assert "multiply(3, 4) returns 12" in review and "+    return a * b" in review
    assert "multiply added, tests pass" not in review
    assert "Work only through the tools" not in review
    gates = [r["kind"] for r in ledger.events()]
    assert gates.index("verify") < gates.index("review") < gates.index("shipped")


def test_bug_caught_by_tests_is_fixed_on_attempt_two(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    session = [add_multiply(WRONG), write_test(), submit(), fix_multiply(), submit("fixed")]
    result = shipyard_run(project, script(tmp_path, implementer=session), spec_file(tmp_path))
    assert result.code == 0, result.stdout + result.stderr
    assert "2 attempt(s)" in result.stdout
    ledger = LedgerView(project)
    attempts = ledger.attempts()
    assert [a["outcome"] for a in attempts] == ["failed", "shipped"]
    assert "test_multiply" in attempts[0]["detail"]
    gates = ledger._rows("SELECT DISTINCT attempt, verify_id FROM gate_results ORDER BY rowid")
    assert [tuple(r) for r in gates] == [(1, "verify-1"), (2, "verify-2")]
    failed = ledger.events("failed")
    assert [r["attempt"] for r in failed] == [1]
    # the evidence of the failure reached the implementer before its second attempt
    implementer = ledger.messages("implementer")
    assert "Your last submission did not pass" in implementer
    assert "assert 7 == 12" in implementer
    assert not [c for c in ledger.conversations() if c.startswith("diagnoser")]


def test_same_mistake_twice_calls_the_diagnoser_whose_plan_reaches_the_implementer(
    tmp_path: Path,
) -> None:
    project = make_project(tmp_path)
    session = [
        add_multiply(WRONG), write_test(), submit(),
        call("write", path="NOTES.md", content="tried again\n"), submit("should pass now"),
        fix_multiply(), submit("fixed after the diagnosis"),
    ]  # fmt: skip
    result = shipyard_run(project, script(tmp_path, implementer=session), spec_file(tmp_path))
    assert result.code == 0, result.stdout + result.stderr
    assert "diagnosis" in result.stdout
    ledger = LedgerView(project)
    assert "3 attempt(s)" in result.stdout
    diagnoser = ledger.messages("diagnoser-2")
    assert "assert 7 == 12" in diagnoser  # the evidence
    assert "failed  required tests/test_multiply.py::test_multiply" in diagnoser  # the gates
    assert "attempt 1: failed" in diagnoser  # what was tried
    implementer = ledger.messages("implementer")
    assert "change `return a + b` in multiply to `return a * b`" in implementer
    (diagnosis,) = ledger.events("diagnosis")
    assert "90%" in diagnosis["summary"]


def test_same_mistake_three_times_ends_blocked_with_a_report(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    session = [
        add_multiply(WRONG), write_test(), submit(),
        call("write", path="NOTES.md", content="one\n"), submit(),
        call("write", path="NOTES.md", content="two\n"), submit(),
    ]  # fmt: skip
    result = shipyard_run(project, script(tmp_path, implementer=session), spec_file(tmp_path))
    assert result.code == 1, result.stdout + result.stderr
    assert "blocked (exit 1)" in result.stdout
    assert "the same failure a third time" in result.stdout
    ledger = LedgerView(project)
    assert ledger.run()["status"] == "blocked"
    report = project.path / ".shipyard" / "runs" / ledger.run()["id"] / "report.md"
    text = report.read_text()
    assert "blocked because: the same failure a third time" in text
    assert "| 1 | failed |" in text and "| 3 | failed |" in text
    assert "Diagnosis" in text
    assert "## What was tried" in text and "- attempt 2: submitted:" in text
    run = ledger.run()  # nothing was committed, and the worktree is kept for a look
    assert git(project.path, "rev-parse", run["branch"]) == run["base_sha"]
    assert (Path(run["worktree"]) / "NOTES.md").read_text() == "two\n"


def test_submitting_nothing_or_claiming_success_in_words_is_not_shipped(tmp_path: Path) -> None:
    project = make_project(tmp_path, attempts=2, idle=2)
    session = [
        submit("all done"),  # no change at all
        {"text": "I have implemented multiply and all tests pass."},
        {"text": "Done. Everything works."},
    ]
    result = shipyard_run(project, script(tmp_path, implementer=session), spec_file(tmp_path))
    assert result.code == 1, result.stdout + result.stderr
    ledger = LedgerView(project)
    attempts = ledger.attempts()
    assert attempts[0]["outcome"] == "refused"
    assert "no change to the worktree" in attempts[0]["detail"]
    assert attempts[1]["outcome"] == "loop"
    assert "answering in words" in attempts[1]["detail"]
    assert ledger.state()["verify_runs"] == 0
    assert "budget: 2 attempts used" in result.stdout


def test_a_skipped_required_test_is_caught(tmp_path: Path) -> None:
    project = make_project(tmp_path, attempts=1)
    skipped = TEST_MULTIPLY.replace("def test", "import pytest\n\n\n@pytest.mark.skip\ndef test")
    session = [
        add_multiply(),
        call("write", path="tests/test_multiply.py", content=skipped),
        submit(),
    ]
    result = shipyard_run(project, script(tmp_path, implementer=session), spec_file(tmp_path))
    assert result.code == 1, result.stdout + result.stderr
    detail = LedgerView(project).attempts()[0]["detail"]
    assert "tests/test_multiply.py::test_multiply" in detail and "skipped" in detail


def test_editing_the_spec_in_the_worktree_is_caught(tmp_path: Path) -> None:
    project = make_project(tmp_path, attempts=1)
    project.write({"spec.yaml": Path(spec_file(tmp_path)).read_text()})
    project.commit("spec")
    weaker = Path(spec_file(tmp_path)).read_text().replace("12", "7")
    session = [*GOOD_SESSION[:-1], call("write", path="spec.yaml", content=weaker), submit()]
    result = shipyard_run(
        project, script(tmp_path, implementer=session), project.path / "spec.yaml"
    )
    assert result.code == 1, result.stdout + result.stderr
    detail = LedgerView(project).attempts()[0]["detail"]
    assert "spec.yaml: the spec is locked" in detail


def test_unknown_tool_malformed_arguments_and_escapes_are_refused_and_the_run_goes_on(
    tmp_path: Path,
) -> None:
    project = make_project(tmp_path)
    (tmp_path / "secret.txt").write_text("do not read")
    session = [
        call("delete_everything", path="."),
        {"call": "write", "raw": '{"path": "calc.py", "content": '},
        call("read", path="../secret.txt"),
        call("write", path=str(tmp_path / "escape.txt"), content="x"),
        call("write", path="../escape2.txt", content="x"),
        *GOOD_SESSION,
    ]
    result = shipyard_run(project, script(tmp_path, implementer=session), spec_file(tmp_path))
    assert result.code == 0, result.stdout + result.stderr
    returned = LedgerView(project).messages("implementer")
    assert "delete_everything" in returned and "unknown tool" in returned.lower()
    assert "do not read" not in returned
    assert "outside" in returned
    assert not (tmp_path / "escape.txt").exists()
    assert (
        not (tmp_path / "escape2.txt").exists()
        and not (project.path.parent / "escape2.txt").exists()
    )
    assert returned.count("outside the worktree") >= 3


def test_reviewer_asks_for_a_change_once_then_approves(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    changes = {
        "output": {
            "decision": "changes",
            "summary": "works, but negative numbers are untested",
            "findings": [
                {
                    "acceptance_id": "multiply",
                    "problem": "no test multiplies negative numbers",
                    "change": "add assert multiply(-2, 3) == -6 to the test",
                }
            ],
        }
    }
    more = TEST_MULTIPLY + "    assert multiply(-2, 3) == -6\n"
    session = [
        *GOOD_SESSION,
        call("write", path="tests/test_multiply.py", content=more),
        submit("negative case tested"),
    ]
    path = script(tmp_path, implementer=session, reviewer=[changes, APPROVE])
    result = shipyard_run(project, path, spec_file(tmp_path))
    assert result.code == 0, result.stdout + result.stderr
    ledger = LedgerView(project)
    assert [a["outcome"] for a in ledger.attempts()] == ["changes", "shipped"]
    assert "add assert multiply(-2, 3) == -6" in ledger.messages("implementer")
    run = ledger.run()
    assert "multiply(-2, 3)" in git(project.path, "show", f"{run['branch']}:tests/test_multiply.py")
    # the second reviewer starts fresh: it does not see the first review
    assert "negative numbers are untested" not in ledger.messages("reviewer-2")


@pytest.mark.parametrize(
    ("setting", "session", "reason"),
    [
        ("steps = 2", [call("list"), call("read", path="calc.py")], "no submit within 2 steps"),
        ("tokens = 50", GOOD_SESSION, "tokens used (limit 50)"),
        ("wall = 0.001", GOOD_SESSION, "s of work (limit 0s)"),
        ("cost = 0.01", [{**add_multiply(), "cost": 0.02}, *GOOD_SESSION[1:]], "budget: $"),
    ],
)
def test_each_budget_ends_the_run_blocked_at_its_limit(
    tmp_path: Path, setting: str, session: list, reason: str
) -> None:
    project = make_project(tmp_path, attempts=1)
    config = project.path / "shipyard.toml"
    text = config.read_text()
    key = setting.split(" = ")[0]
    text = "\n".join(line for line in text.splitlines() if not line.startswith(f"{key} ="))
    config.write_text(text + f"\n{setting}\n")
    project.commit("budget")
    result = shipyard_run(project, script(tmp_path, implementer=session), spec_file(tmp_path))
    assert result.code == 1, result.stdout + result.stderr
    state = LedgerView(project).state()
    assert state["stage"] == "blocked"
    assert reason in state["reason"], state["reason"]


def test_the_planner_writes_the_spec_and_an_invalid_one_goes_back_to_it(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    spec = spec_file(tmp_path).read_text()
    uncovered = spec.replace("        covers: [multiply]\n", "        covers: []\n")
    planner = [
        {"output": {"spec_yaml": "task: [unclosed"}},
        {"output": {"spec_yaml": uncovered}},
        {
            "output": {
                "spec_yaml": spec,
                "decisions": [{"choice": "multiply lives in calc.py", "reason": "next to add"}],
            }
        },
    ]
    path = script(tmp_path, planner=planner, implementer=GOOD_SESSION)
    result = run_cli(
        "run", "multiply two numbers", "--model", f"script:{path}", "--yes", cwd=project.path
    )
    assert result.code == 0, result.stdout + result.stderr
    assert "The planner's spec" in result.stdout and "multiply(3, 4) returns 12" in result.stdout
    ledger = LedgerView(project)
    planner_said = ledger.messages("planner")
    assert "The spec does not validate" in planner_said
    assert "No check covers the acceptance ids multiply" in planner_said
    (plan,) = ledger.events("plan")
    assert "multiply lives in calc.py" in plan["data"]
    lock = project.path / ".shipyard" / "runs" / ledger.run()["id"] / "spec.lock.yaml"
    assert lock.read_text() == spec


def test_a_planned_spec_needs_confirming_or_yes(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    path = script(tmp_path, implementer=GOOD_SESSION)
    result = run_cli("run", "multiply", "--model", f"script:{path}", cwd=project.path)
    assert result.code == 2, result.stdout + result.stderr
    assert "--yes" in result.stderr
    assert not (project.path / ".shipyard").exists()


def test_the_same_call_again_and_again_is_a_loop(tmp_path: Path) -> None:
    project = make_project(tmp_path, attempts=1)
    session = [call("read", path="calc.py")] * 3
    result = shipyard_run(project, script(tmp_path, implementer=session), spec_file(tmp_path))
    assert result.code == 1, result.stdout + result.stderr
    (attempt,) = LedgerView(project).attempts()
    assert attempt["outcome"] == "loop"
    assert "the same read call with the same arguments 3 times in a row" in attempt["detail"]


def test_status_log_and_report_show_the_run(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    session = [add_multiply(WRONG), write_test(), submit(), fix_multiply(), submit("fixed")]
    shipped = shipyard_run(project, script(tmp_path, implementer=session), spec_file(tmp_path))
    assert shipped.code == 0, shipped.stdout + shipped.stderr
    run_id = LedgerView(project).run()["id"]
    status = run_cli("status", "--json", cwd=project.path)
    (row,) = status.json
    assert row["id"] == run_id and row["status"] == "shipped" and row["attempts"] == 2
    log = run_cli("log", run_id[:-2], cwd=project.path)  # a unique prefix is enough
    assert log.code == 0
    kinds = [line.split()[2] for line in log.stdout.splitlines()]
    assert kinds[0] == "run" and kinds[-1] == "shipped"
    assert "failed    attempt 1 failed: tests" in log.stdout
    report = run_cli("report", run_id, cwd=project.path)
    assert f"# Run {run_id}: shipped" in report.stdout
    assert "| 1 | failed | tests suite: 1 of 2 tests failed" in report.stdout
    assert "- attempt 1 `verify-1` tests: failed" in report.stdout
    assert "implementer (script:script.yaml:implementer)" in report.stdout
    missing = run_cli("log", "r-nope", cwd=project.path)
    assert missing.code == 2 and "no run 'r-nope'" in missing.stderr


def test_what_ships_is_the_submitted_tree_even_after_the_implementer_commits(
    tmp_path: Path,
) -> None:
    project = make_project(tmp_path)
    session = [
        *GOOD_SESSION[:-1],  # edit, test, and a pytest run that leaves __pycache__ behind
        call("run", command="git add -A && git commit -qm 'my own commit'"),
        submit(),
    ]
    result = shipyard_run(project, script(tmp_path, implementer=session), spec_file(tmp_path))
    assert result.code == 0, result.stdout + result.stderr
    run = LedgerView(project).run()
    branch = run["branch"]
    commits = git(project.path, "log", "--format=%s", f"{run['base_sha']}..{branch}").splitlines()
    assert commits == ["calc.multiply multiplies two numbers"]
    files = git(project.path, "show", "--name-only", "--format=", branch).split()
    assert sorted(files) == ["calc.py", "tests/test_multiply.py"]
    assert not Path(run["worktree"]).is_relative_to(project.path)


def test_model_written_code_never_sees_the_users_secrets(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    nosy = TEST_MULTIPLY + (
        "\n\ndef test_no_secrets():\n    import os\n\n"
        "    assert 'OPENAI_API_KEY' not in os.environ, os.environ['OPENAI_API_KEY']\n"
    )
    session = [add_multiply(), call("write", path="tests/test_multiply.py", content=nosy), submit()]
    result = run_cli(
        "run", "multiply", "--spec", str(spec_file(tmp_path)), "--yes",
        "--model", f"script:{script(tmp_path, implementer=session)}",
        cwd=project.path, env={"OPENAI_API_KEY": "sk-CANARY-12345"},
    )  # fmt: skip
    assert result.code == 0, result.stdout + result.stderr
    assert "sk-CANARY" not in LedgerView(project).messages("implementer")


def test_a_spec_that_cannot_be_checked_is_refused_before_any_work(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    http = spec_file(tmp_path).read_text() + (
        "  http:\n    - id: home\n      covers: [multiply]\n"
        "      request: {method: GET, path: /}\n      expect: {status: 200}\n"
    )
    path = tmp_path / "http.spec.yaml"
    path.write_text(http)
    result = shipyard_run(project, script(tmp_path, implementer=GOOD_SESSION), path)
    assert result.code == 2, result.stdout + result.stderr
    assert "app.start" in result.stderr
    assert not (project.path / ".shipyard" / "shipyard.db").exists()


def test_a_tampered_lock_blocks_the_run(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    path = script(tmp_path, implementer=[add_multiply()])  # runs out of lines: paused
    first = shipyard_run(project, path, spec_file(tmp_path))
    assert first.code == 3, first.stdout + first.stderr
    assert "the script has 1 replies" in first.stderr and "shipyard resume" in first.stderr
    run = LedgerView(project).run()
    assert run["status"] == "paused"
    lock = project.path / ".shipyard" / "runs" / run["id"] / "spec.lock.yaml"
    lock.write_text(lock.read_text().replace("12", "7"))
    script(tmp_path, implementer=GOOD_SESSION)
    again = run_cli("resume", run["id"], cwd=project.path)
    assert again.code == 1, again.stdout + again.stderr
    assert "the locked spec was changed after the run started" in again.stdout
    assert LedgerView(project).run()["status"] == "blocked"


@pytest.mark.parametrize(
    ("meanwhile", "said"),
    [
        ("git -C {p} commit -q --allow-empty -m moved", "main has moved on since the run started"),
        ("git -C {p} checkout -q -b other", "other is checked out now, the run started from main"),
        ("echo '# mine' >> {p}/calc.py", "git refused the fast-forward of main"),
    ],
)
def test_merge_happens_only_when_safe_and_says_why_not(
    tmp_path: Path, meanwhile: str, said: str
) -> None:
    project = make_project(tmp_path)
    user = call("run", command=meanwhile.format(p=project.path))  # the user, during the run
    session = [user, *GOOD_SESSION]
    result = shipyard_run(
        project, script(tmp_path, implementer=session), spec_file(tmp_path), "--merge"
    )
    assert result.code == 0, result.stdout + result.stderr
    assert f"not merged: {said}" in result.stdout
    run = LedgerView(project).run()
    assert git(project.path, "rev-parse", "main") != git(project.path, "rev-parse", run["branch"])


def test_files_the_gates_built_and_files_outside_the_project_do_not_ship(tmp_path: Path) -> None:
    repo = make_project(tmp_path / "repo")  # the project is the sub folder of a bigger repo
    sub = repo.path / "sub"
    for name in ("shipyard.toml", "calc.py", "tests/test_add.py", "conftest.py"):
        (sub / name).parent.mkdir(parents=True, exist_ok=True)
        (sub / name).write_text((repo.path / name).read_text())
    config = sub / "shipyard.toml"
    (sub / "build.py").write_text(
        "import os\n\nos.makedirs('dist', exist_ok=True)\nopen('dist/out.bin', 'w').write('x')\n"
    )
    config.write_text(
        config.read_text().replace("[commands]", '[commands]\nbuild = ["python build.py"]')
    )
    repo.commit("sub project")
    session = [
        add_multiply(WRONG), write_test(),
        call("run", command="echo changed-by-model > ../README"),
        submit(),
        fix_multiply(), call("run", command="git add -A"), submit("fixed"),
    ]  # fmt: skip
    result = run_cli(
        "run", "multiply", "--spec", str(spec_file(tmp_path)), "--yes",
        "--model", f"script:{script(tmp_path, implementer=session)}", cwd=sub,
    )  # fmt: skip
    assert result.code == 0, result.stdout + result.stderr
    view = LedgerView(repo)
    view.path = sub / ".shipyard" / "shipyard.db"
    run = view.run()
    files = git(repo.path, "show", "--name-only", "--format=", run["branch"]).split()
    assert sorted(files) == ["sub/calc.py", "sub/tests/test_multiply.py"]
    assert "dist/out.bin" in view.state()["artefacts"][0]


def test_an_unchanged_resubmit_is_answered_from_the_verdict_cache(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    session = [add_multiply(WRONG), write_test(), submit(), submit("again, unchanged"),
               fix_multiply(), submit("fixed")]  # fmt: skip
    result = shipyard_run(project, script(tmp_path, implementer=session), spec_file(tmp_path))
    assert result.code == 0, result.stdout + result.stderr
    verifies = [e["summary"] for e in LedgerView(project).events("verify")]
    assert len(verifies) == 3, verifies
    assert "cached" not in verifies[0]
    assert verifies[1].startswith("verify 2: failed") and "cached from verify-1" in verifies[1]
    assert verifies[2].startswith("verify 3: passed") and "cached" not in verifies[2]
    evidence = next((project.path / ".shipyard" / "runs").glob("r-*/verify-2"))
    assert (evidence / "tests" / "outcomes.json").is_file(), "the cached verify has its evidence"
