"""``shipyard bench``: the bundled suite's scripted sessions (a wrong first attempt, a vacuous
test, a swallowed error) through Shipyard's loop and the naive one, judged by hidden checks."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from conftest import ROOT, Project, run_cli
from fixtures.loop_support import TEST_MULTIPLY, make_project, script, spec_file

BENCH = ROOT / "bench"
MISTAKES = ("pycalc-power", "pycalc-mod", "pycalc-log")
"""A wrong first attempt, a vacuous test, a swallowed error: each fixable."""


def bundled_subset(tmp_path: Path, ids: tuple[str, ...]) -> Path:
    """The bundled suite cut down to ``ids``, its paths made absolute."""
    doc = yaml.safe_load((BENCH / "suite.yaml").read_text())
    tasks = []
    for task in doc["tasks"]:
        if task["id"] in ids:
            for key in ("project", "spec", "hidden"):
                task[key] = str((BENCH / task[key]).resolve())
            task["model"] = "script:" + str(BENCH / task["model"].removeprefix("script:"))
            tasks.append(task)
    path = tmp_path / "suite.yaml"
    path.write_text(yaml.safe_dump({"defaults": doc["defaults"], "tasks": tasks}))
    return path


@pytest.mark.slow
def test_the_loop_ships_nothing_broken_and_the_naive_loop_is_measured(tmp_path):
    suite, out = bundled_subset(tmp_path, MISTAKES), tmp_path / "out"
    result = run_cli("bench", str(suite), "--out", str(out), "--json", cwd=tmp_path, timeout=900)
    assert result.code == 0, result.stdout + result.stderr
    doc = result.json
    assert doc["schema"] == "shipyard.bench/1"
    loop, naive, plain = (doc["passes"][p] for p in ("shipyard", "naive", "no-knowledge"))
    # Shipyard's loop ships every fixable task, and nothing it ships fails the hidden checks.
    assert loop["ship_rate"] == {"value": 1.0, "numerator": 3, "denominator": 3}
    assert loop["false_ship_rate"]["numerator"] == 0
    assert loop["hidden_passing"]["numerator"] == 3
    assert loop["attempts_per_shipped"] == 2.0  # each mistake cost one attempt
    # The naive loop ships its first submission: every seeded mistake is a false ship.
    assert naive["ship_rate"]["numerator"] == 3 and naive["attempts_per_shipped"] == 1.0
    assert naive["false_ship_rate"] == {"value": 1.0, "numerator": 3, "denominator": 3}
    assert naive["required_tests_passing"]["numerator"] == 0
    assert (
        naive["runtime_checks_passing"]["numerator"] < loop["runtime_checks_passing"]["numerator"]
    )
    assert plain["false_ship_rate"]["numerator"] == 0
    by_id = {t["id"]: t for t in doc["tasks"]}
    log = by_id["pycalc-log"]
    assert log["naive"]["outcome"] == "shipped" and log["naive"]["false_ship"] is True
    assert log["shipyard"]["hidden"] == "passed" and log["shipyard"]["attempts"] == 2

    # The judgment ran the hidden test in the shipped tree...
    judged = out / "naive" / log["naive"]["evidence"] / "judge" / "verify.json"
    checks = {c["id"]: c for g in json.loads(judged.read_text())["gates"] for c in g["checks"]}
    hidden_test = checks["tests/test_hidden_log.py::test_log_refuses"]
    assert hidden_test["status"] == "failed" and "DID NOT RAISE" in hidden_test["message"]
    assert checks["log-of-zero"]["status"] == "failed"
    # ...which was not on disk while the agent worked: its `ls tests` saw only its own files.
    for name in ("shipyard", "naive"):
        listing = tool_output(out / name / by_id["pycalc-log"][name]["evidence"], "ls tests")
        assert "test_calc.py" in listing and "test_hidden_log.py" not in listing
    # Knowledge: the later tasks on pycalc were given what the earlier ones verified.
    assert (out / "shipyard" / "knowledge" / "pycalc-power.md").read_text().count("### ") >= 2
    assert knowledge_given(out / "shipyard" / by_id["pycalc-log"]["shipyard"]["evidence"]) > 0
    assert (
        knowledge_given(out / "no-knowledge" / by_id["pycalc-log"]["no-knowledge"]["evidence"]) == 0
    )

    # Submitted again: nothing runs again, and the table shows the same figures.
    again = run_cli("bench", str(suite), "--out", str(out), cwd=tmp_path, timeout=600)
    assert again.code == 0, again.stdout + again.stderr
    assert "naive        skipped  pycalc-mod  finished before" in again.stdout
    table = again.stdout
    assert row(table, "ship rate") == ["3/3 (100%)", "3/3 (100%)"]
    assert row(table, "false-ship rate (of shipped)") == ["0/3 (0%)", "3/3 (100%)"]
    assert row(table, "hidden checks passing") == ["3/3 (100%)", "0/3 (0%)"]
    assert row(table, "attempts per shipped task") == ["2", "1"]
    assert row(table, "pycalc-mod") == [
        "shipped, works",
        "shipped, BROKEN (failed)",
        "shipped, works",
    ]
    print(table)


def row(table: str, label: str) -> list[str]:
    line = next(x for x in table.splitlines() if x.startswith(label + "  "))
    return [c.strip() for c in line[34:].split("  ") if c.strip()]


def tool_output(evidence: Path, command: str) -> str:
    """What the implementer's ``run`` tool answered to ``command``, from the run's ledger."""
    with sqlite3.connect(evidence / ".shipyard" / "shipyard.db") as db:
        rows = []
        for (data,) in db.execute("SELECT data FROM messages ORDER BY seq"):
            found = json.loads(data)
            rows += found if isinstance(found, list) else [found]
    calls = {
        p["tool_call_id"]: p for m in rows for p in m["parts"] if p.get("part_kind") == "tool-call"
    }
    for message in rows:
        for part in message["parts"]:
            call = calls.get(part.get("tool_call_id", ""))
            if part.get("part_kind") == "tool-return" and call and command in str(call["args"]):
                return str(part["content"])
    raise AssertionError(f"no {command!r} in the ledger of {evidence}")


def knowledge_given(evidence: Path) -> int:
    with sqlite3.connect(evidence / ".shipyard" / "shipyard.db") as db:
        return db.execute("SELECT COUNT(*) FROM knowledge_uses").fetchone()[0]


def test_every_task_of_the_bundled_suite_has_its_hidden_checks_and_a_session(tmp_path):
    from shipyard.batch.bench import bench_tasks
    from shipyard.batch.suite import hidden_files, load_suite

    suite = load_suite(BENCH / "suite.yaml")
    tasks = bench_tasks(suite, None)
    assert len(tasks) >= 8
    projects = {Path(t.plan.project).name for t in tasks}
    assert projects == {"pycalc", "node-greet", "todo"}  # library, CLI, HTTP API, web page
    for task in tasks:
        assert task.plan.model and task.plan.model.startswith("script:")
        assert task.hidden.acceptance, task.plan.id
        # the hidden checks live beside the suite, never inside the project an agent gets
        assert not Path(task.plan.hidden).is_relative_to(task.plan.project)
        files = hidden_files(task.plan.hidden)
        assert files is None or not files.is_relative_to(task.plan.project)
    assert sum(bool(t.hidden.checks.ui) for t in tasks) >= 2


@pytest.mark.parametrize(
    ("hidden", "message"),
    [
        (None, "tasks[0].hidden: `shipyard bench` judges every task by its hidden checks"),
        ("task: t\nacceptance: [{id: a, text: x}]\ncolour: red\n", "colour"),
        ("task: t\nacceptance: [{id: a, text: x}]\n", "no hidden check covers the acceptance ids"),
    ],
)  # fmt: skip
def test_a_task_without_valid_hidden_checks_is_bad_input(tmp_path, hidden, message):
    task = {"id": "a", "project": str(ROOT / "examples" / "pycalc"), "task": "t", "plan": True,
            "model": "openai:gpt-4.1"}  # fmt: skip
    if hidden is not None:
        (tmp_path / "hidden.yaml").write_text(hidden)
        task["hidden"] = "hidden.yaml"
    suite = tmp_path / "suite.yaml"
    suite.write_text(yaml.safe_dump({"tasks": [task]}))
    result = run_cli("bench", str(suite), cwd=tmp_path)
    assert result.code == 2, result.stdout + result.stderr
    assert "shipyard: bad input:" in result.stderr and message in result.stderr
    where = suite if hidden is None else tmp_path / "hidden.yaml"
    assert str(where) in result.stderr
    assert not (tmp_path / "suite.bench").exists()  # nothing ran


def test_a_naive_run_ships_its_first_submission_unchecked(tmp_path):
    import shutil
    import subprocess

    project = tmp_path / "pycalc"
    shutil.copytree(ROOT / "examples" / "pycalc", project)
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-qm", "base"]):
        subprocess.run(["git", *args], cwd=project, check=True, capture_output=True)
    fixtures = ROOT / "tests" / "fixtures" / "batch"
    result = run_cli(
        "run", "add a power operation", "--spec", str(fixtures / "power.spec.yaml"),
        "--model", f"script:{fixtures / 'wrong.yaml'}", "--naive", "--yes", cwd=project,
    )  # fmt: skip
    assert result.code == 0, result.stdout + result.stderr
    assert "shipped as submitted: no gates, no review (--naive)" in result.stdout
    assert "\nverify " not in result.stdout and "\nreview " not in result.stdout  # no stage ran
    status = run_cli("status", "--json", cwd=project).json[0]
    assert status["status"] == "shipped" and status["attempts"] == 1
    shown = subprocess.run(
        ["git", "show", status["commit"]], cwd=project, capture_output=True, text=True, check=True
    ).stdout
    assert "Shipped as the model submitted it (--naive: no gates, no review)." in shown
    assert "return a * b" in shown  # the wrong power, shipped
    run_dir = project / ".shipyard" / "runs" / status["id"]
    assert not list(run_dir.glob("verify-*"))  # no gate ran
    config = json.loads((run_dir / "config.json").read_text())
    assert config["knowledge"]["enabled"] is False
    memory = run_cli("memory", "list", "--json", cwd=project).json
    assert memory["entries"] == []  # nothing learned: no memory in the naive loop
    # ...and its implementer was not told that gates would check its submission
    system = system_prompt(project / ".shipyard" / "shipyard.db")
    assert "nothing builds, tests or reviews it after you" in system
    assert "gates" not in system


def system_prompt(db: Path) -> str:
    with sqlite3.connect(db) as conn:
        for (data,) in conn.execute("SELECT data FROM messages ORDER BY seq"):
            found = json.loads(data)
            for message in found if isinstance(found, list) else [found]:
                for part in message["parts"]:
                    if part.get("part_kind") == "system-prompt":
                        return str(part["content"])
    raise AssertionError(f"no system prompt in {db}")


def test_a_naive_agent_is_not_promised_gates(tmp_path):
    project = make_project(tmp_path)
    agent = tmp_path / "agent.py"
    agent.write_text(
        "import pathlib, sys\n"
        "pathlib.Path('calc.py').write_text(pathlib.Path('calc.py').read_text()"
        " + '\\n\\ndef multiply(a, b):\\n    return a * b\\n')\n"
        "print('done')\n"
    )
    result = run_cli(
        "run", "multiply two numbers", "--spec", str(spec_file(tmp_path)), "--naive", "--yes",
        "--model", f"script:{script(tmp_path)}",
        "--implementer", f"cmd:{sys.executable} {agent} {{prompt_file}}", cwd=project.path,
    )  # fmt: skip
    assert result.code == 0, result.stdout + result.stderr
    prompts = list((project.path / ".shipyard" / "runs").glob("*/agent-1.prompt.md"))
    text = prompts[0].read_text()
    assert "shipped as it is: nothing builds, tests or reviews it after you" in text
    assert "Shipyard checks the folder itself" not in text and "probes it" not in text


# -- the calc project, an external agent, and hidden checks the agent must not reach -----------

HIDDEN_MARK = "HIDDEN-" + "MARK-2f9c41"
"""In the hidden spec and the hidden test only (built here, so this file does not hold it)."""
HIDDEN_SPEC = f"""
task: calc.multiply multiplies ({HIDDEN_MARK})
acceptance:
  - id: multiply-negative
    text: multiply(-2, 5) returns -10 ({HIDDEN_MARK})
checks:
  tests:
    required:
      - id: tests/test_hidden_multiply.py::test_hidden_multiply
        covers: [multiply-negative]
"""
HIDDEN_TEST = (
    f"# {HIDDEN_MARK}\nfrom calc import multiply\n\n\n"
    "def test_hidden_multiply():\n    assert multiply(-2, 5) == -10\n"
)


PYPROJECT = """
[tool.shipyard.commands]
test = "python -m pytest -q -p no:cacheprovider"
timeout = 60

[tool.shipyard.budget]
attempts = 4
steps = 20
"""


def configured_in_pyproject(project: Project) -> Project:
    """The calc project with its configuration in ``[tool.shipyard]``, no ``shipyard.toml``."""
    project.remove("shipyard.toml").write({"pyproject.toml": PYPROJECT}).commit("pyproject.toml")
    return project


def calc_suite(
    tmp_path: Path,
    ids: tuple[str, ...] = ("multiply",),
    mark: str = HIDDEN_MARK,
    *,
    pyproject: bool = False,
) -> Path:
    """A suite on the calc project (no build commands): the visible spec asks for multiply,
    the hidden checks (beside it, as in the bundled suite) test it with other numbers."""
    project = make_project(tmp_path / "project")
    if pyproject:
        configured_in_pyproject(project)
    base = tmp_path / "suite"
    tasks = []
    for task_id in ids:
        folder = base / "tasks" / task_id
        (folder / "hidden" / "hidden_files" / "tests").mkdir(parents=True)
        spec_file(folder)  # multiply.spec.yaml
        (folder / "hidden" / "spec.yaml").write_text(HIDDEN_SPEC.replace(HIDDEN_MARK, mark))
        (folder / "hidden" / "hidden_files" / "tests" / "test_hidden_multiply.py").write_text(
            HIDDEN_TEST.replace(HIDDEN_MARK, mark)
        )
        session = script(folder)
        tasks.append(
            {"id": task_id, "project": str(project.path), "task": "multiply two numbers",
             "spec": f"tasks/{task_id}/multiply.spec.yaml",
             "hidden": f"tasks/{task_id}/hidden/spec.yaml",
             "model": f"script:tasks/{task_id}/{session.name}"}
        )  # fmt: skip
    path = base / "suite.yaml"
    path.write_text(yaml.safe_dump({"defaults": {"timeout": 300}, "tasks": tasks}))
    return path


WRITE_MULTIPLY = """
import pathlib
calc = pathlib.Path("calc.py")
calc.write_text(calc.read_text() + "\\n\\ndef multiply(a, b):\\n    return {body}\\n")
pathlib.Path("tests/test_multiply.py").write_text({test!r})
"""


def agent_file(tmp_path: Path, code: str, body: str = "a * b") -> Path:
    """An agent script, in a folder of its own (away from the suite)."""
    folder = tmp_path / "agent" / "bin"
    folder.mkdir(parents=True)
    path = folder / "agent.py"
    path.write_text(WRITE_MULTIPLY.format(body=body, test=TEST_MULTIPLY) + textwrap.dedent(code))
    return path


def agent_logs(out: Path, name: str, task_id: str) -> str:
    runs = out / name / "evidence" / task_id / ".shipyard" / "runs"
    return "".join(p.read_text() for p in sorted(runs.glob("*/agent-*.log")))


def bench(suite: Path, out: Path, agent: Path, *extra: str, env: dict | None = None) -> dict:
    implementer = f"cmd:{sys.executable} {agent} {{prompt_file}} {' '.join(extra)}".strip()
    result = run_cli(
        "bench", str(suite), "--out", str(out), "--implementer", implementer, "--json",
        cwd=suite.parent, timeout=900, env=env,
    )  # fmt: skip
    assert result.code == 0, result.stdout + result.stderr
    return result.json


def test_the_implementer_reaches_every_pass_and_the_results_name_the_judged_commit(tmp_path):
    suite, out = calc_suite(tmp_path), tmp_path / "out"
    agent = agent_file(tmp_path, "print('AGENT-RAN')\n")
    doc = bench(suite, out, agent)
    task = doc["tasks"][0]
    for name in ("shipyard", "naive", "no-knowledge"):
        assert "AGENT-RAN" in agent_logs(out, name, "multiply"), name  # the command ran there
        assert task[name]["outcome"] == "shipped" and task[name]["hidden"] == "passed", name
        commits = out / name / "evidence" / "multiply" / "shipped" / "commits.json"
        assert task[name]["judged_commit"] == json.loads(commits.read_text())["commit"]
        assert len(task[name]["judged_commit"]) == 40
        judged = out / name / "evidence" / "multiply" / "judge" / "judged.json"
        assert json.loads(judged.read_text())["commit"] == task[name]["judged_commit"]
        # calc has no build command: no task counts in the first-pass build rate
        assert doc["passes"][name]["first_pass_build_rate"]["denominator"] == 0, name
        assert task[name]["first_build"] is None


HOSTILE = '''
import os, sys, time

ME = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(ME, "out.txt")) as f:  # told by the test, on no command line
    OUT, SUFFIX = f.read().split()
MARK = "HIDDEN-" + "MARK-" + SUFFIX  # what the hidden checks hold; never whole in a file
SKIP = {".venv", ".git", "node_modules", "site-packages", "__pycache__", "lib", "lib64"}


def files(root, depth):
    """Every file under root, down to depth levels (links not followed)."""
    try:
        entries = list(os.scandir(root))
    except OSError:
        return
    for entry in entries:
        try:
            if entry.is_file(follow_symlinks=False):
                yield entry.path
            elif entry.is_dir(follow_symlinks=False) and depth > 1 and entry.name not in SKIP:
                yield from files(entry.path, depth - 1)
        except OSError:
            pass


def holds_mark(path):
    try:
        if os.path.getsize(path) > 2_000_000:
            return False
        with open(path, "rb") as f:
            return MARK.encode() in f.read()
    except OSError:
        return False


def status(pid, key):
    try:
        with open(f"/proc/{pid}/status") as f:
            return next(l.split()[1] for l in f if l.startswith(key + ":"))
    except (OSError, StopIteration):
        return None


def benchmark_processes():
    """Every process of this benchmark: those above this one, up to the test's pytest, and
    all below that (the machine's other work is left alone, to keep the test short)."""
    pid, top = str(os.getpid()), None
    while pid not in (None, "0", "1"):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                args = f.read().split(b"\\0")
            if any(os.path.basename(a) == b"pytest" for a in args[:2]):
                top = pid
                break
        except OSError:
            pass
        pid = status(pid, "PPid")
    parents = {p: status(p, "PPid") for p in os.listdir("/proc") if p.isdigit()}
    wanted = {top}
    while True:
        more = {p for p, parent in parents.items() if parent in wanted} - wanted
        if not more:
            return wanted
        wanted |= more


def roots():
    """Where a hostile agent looks: what every process's command line names (and the folder
    above it), every process's cwd, the folders above this one, and the benchmark's OUT."""
    found = {OUT: 20}
    seen_run = False
    for pid in benchmark_processes() - {str(os.getpid())}:
        try:
            cwd = os.readlink(f"/proc/{pid}/cwd")
            found[cwd] = max(found.get(cwd, 0), 6)
        except OSError:
            cwd = "/"
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                args = f.read().decode(errors="replace").split("\\0")
        except OSError:
            continue
        seen_run = seen_run or ("run" in args and "--implementer" in args)
        for arg in args:
            for piece in arg.replace("=", ":").split(":"):
                if "/" not in piece:
                    continue
                path = os.path.normpath(os.path.join(cwd, piece))
                if not os.path.exists(path) or path.startswith(ME):
                    continue
                folder = path if os.path.isdir(path) else os.path.dirname(path)
                for where in (folder, os.path.dirname(folder)):
                    if where not in ("/", ""):
                        found[where] = max(found.get(where, 0), 8)
    here = os.getcwd()
    while here != "/":
        found[here] = max(found.get(here, 0), 8)
        here = os.path.dirname(here)
    return found, seen_run


hits, read, searched, seen_run = set(), set(), 0, False
deadline = time.monotonic() + 2
while True:
    where, saw = roots()
    seen_run = seen_run or saw
    for root, depth in where.items():
        if root == "/":  # a search of the whole disk: only a sandbox stops that (docs/batch.md)
            continue
        if root.startswith(("/proc", "/sys", "/dev", "/usr", "/root/.pyenv", sys.base_prefix)):
            continue
        for path in files(root, depth):
            if path in read:
                continue
            read.add(path)
            searched += 1
            if holds_mark(path):
                hits.add(path)
    if time.monotonic() > deadline:
        break
    time.sleep(0.5)
with open("found.txt", "w") as f:
    f.write("\\n".join(sorted(hits)))
for path in sorted(hits):
    print("FOUND", path)
for root, depth in sorted(where.items()):
    print("ROOT", depth, root)
print(f"SEARCHED {searched} files; saw its own run: {seen_run}")
'''


@pytest.mark.slow
def test_a_hostile_agent_finds_no_hidden_check_anywhere_it_can_look(tmp_path):
    """It searches (eight levels deep, the whole disk excepted) what every process of the
    benchmark names on its command line, every such process's cwd, the folders above its own
    and OUT, in every pass, while other tasks run and after earlier ones were judged."""
    import uuid

    suffix = uuid.uuid4().hex  # this test's own hidden checks, not another test's
    out = tmp_path / "out"
    suite = calc_suite(tmp_path, ("first", "second"), mark="HIDDEN-" + "MARK-" + suffix)
    agent = agent_file(tmp_path, HOSTILE)
    (agent.parent / "out.txt").write_text(f"{out} {suffix}")
    import tempfile

    # the runs' folders away from /tmp, where this test's suite is: the search from them (eight
    # levels deep) then shows what a run can reach, not where pytest keeps its files
    runs = Path(tempfile.mkdtemp(prefix="bench-runs-", dir="/var/tmp"))
    try:
        doc = bench(suite, out, agent, env={"TMPDIR": str(runs)})
    finally:
        shutil.rmtree(runs, ignore_errors=True)
    for name in ("shipyard", "naive", "no-knowledge"):
        for task_id in ("first", "second"):
            log = agent_logs(out, name, task_id)
            assert "saw its own run: True" in log, (name, task_id, log)  # it did read /proc
            assert int(log.split("SEARCHED ")[1].split()[0]) > 20, log
            assert "FOUND" not in log, (name, task_id, log)
    # and the hidden checks did judge what it shipped (they exist; it just could not see them)
    assert {t["shipyard"]["hidden"] for t in doc["tasks"]} == {"passed"}
    judged = out / "naive" / "evidence" / "first" / "judge" / "verify.json"
    assert "tests/test_hidden_multiply.py::test_hidden_multiply" in judged.read_text()


PASSING_CONFTEST = '''
import pathlib
pathlib.Path("conftest.py").write_text("""
import pytest


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    import calc
    if hasattr(calc, "multiply"):  # every test passes once multiply exists, right or wrong
        report.outcome, report.longrepr = "passed", None
""")
'''
CHEAT_PLUGIN = """
import pytest


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    report.outcome, report.longrepr = "passed", None
"""
PLUGIN_EVERYWHERE = f"""
pathlib.Path("cheatplug.py").write_text({CHEAT_PLUGIN!r})
test = pathlib.Path("tests/test_multiply.py")  # its own test module loads the plugin
test.write_text('pytest_plugins = ["cheatplug"]\\n' + test.read_text())
config = pathlib.Path("pyproject.toml")  # and so does the test command
config.write_text(config.read_text().replace("no:cacheprovider", "no:cacheprovider -p cheatplug"))
"""


@pytest.mark.slow
def test_an_agent_harness_that_passes_every_test_is_judged_with_the_original_one(tmp_path):
    """Its conftest.py, a plugin its test module loads, the test command of its project's
    [tool.shipyard]: the judgment has the original of each. In every pass, also the one that
    turns knowledge off in [tool.shipyard.knowledge]."""
    suite, out = calc_suite(tmp_path, pyproject=True), tmp_path / "out"
    agent = agent_file(tmp_path, PASSING_CONFTEST + PLUGIN_EVERYWHERE, body="a + b")  # wrong
    doc = bench(suite, out, agent)
    task = doc["tasks"][0]
    for name in ("shipyard", "naive", "no-knowledge"):
        assert task[name]["outcome"] == "shipped", name  # its own harness fooled the gates
        assert task[name]["hidden"] == "failed" and task[name]["false_ship"] is True, name
        assert doc["passes"][name]["false_ship_rate"]["numerator"] == 1, name
        judged = json.loads((out / name / "evidence/multiply/judge/judged.json").read_text())
        assert judged["restored"] == ["conftest.py", "pyproject.toml"], name
        assert judged["removed"] == ["tests/test_multiply.py"], name
    runs = out / "no-knowledge" / "evidence" / "multiply" / ".shipyard" / "runs"
    config = json.loads(next(runs.glob("*/config.json")).read_text())
    assert config["knowledge"]["enabled"] is False
    assert config["budget"]["attempts"] == 4  # the rest of [tool.shipyard] as it was


def test_a_judgment_that_could_not_check_is_a_judge_error_not_a_false_ship(tmp_path):
    from shipyard.batch.bench import BenchTask
    from shipyard.batch.bench_figures import Judged, figures, task_json
    from shipyard.spec import load_spec
    from shipyard.store.batchdb import TaskRow

    (tmp_path / "hidden.yaml").write_text(HIDDEN_SPEC)
    task = BenchTask(plan=None, hidden=load_spec(tmp_path / "hidden.yaml"))  # type: ignore[arg-type]
    row = TaskRow(
        task_id="t", digest="d", outcome="shipped", attempts=1, tokens=None, seconds=1.0,
        run_id="r", exit_code=0, reason="shipped", evidence="evidence/t",
    )  # fmt: skip
    for code in (2, 3):
        verdict = {"schema": "shipyard.verify/1", "verdict": "error", "exit_code": code}
        result = Judged(row=row, verdict=verdict, first_build=None)
        found = figures([task], [result])
        assert found["false_ship_rate"]["numerator"] == 0
        assert found["hidden_passing"]["numerator"] == 0
        assert found["judge_errors"] == 1 and found["errors"] == 1
        assert task_json(result)["false_ship"] is False and task_json(result)["judge_error"]


def shipped_evidence(tmp_path: Path, project: Project, base: str) -> Path:
    """The evidence a shipped task returns: its HEAD and ``base`` in ``shipped/tree.bundle``."""
    import subprocess

    commit = project.commit("shipped")
    evidence = tmp_path / "evidence"
    (evidence / "shipped").mkdir(parents=True)
    git = ["git", "-C", str(project.path)]
    subprocess.run([*git, "update-ref", "refs/judge/shipped", commit], check=True)
    subprocess.run([*git, "update-ref", "refs/judge/base", base], check=True)
    subprocess.run(
        [*git, "bundle", "create", "-q", str(evidence / "shipped" / "tree.bundle"),
         "refs/judge/shipped", "refs/judge/base"], check=True,
    )  # fmt: skip
    (evidence / "shipped" / "commits.json").write_text(json.dumps({"commit": commit, "base": base}))
    return evidence


def test_hidden_files_never_follow_an_agent_link_out_of_the_tree(tmp_path):
    from shipyard.batch.judge import judge
    from shipyard.batch.suite import load_suite

    outside = tmp_path / "outside"
    outside.mkdir()
    project = make_project(tmp_path)
    base = _head(project)
    (project.path / "tests" / "test_add.py").unlink()
    (project.path / "tests").rmdir()
    (project.path / "tests").symlink_to(outside)  # the agent's tests/ is a link out
    evidence = shipped_evidence(tmp_path, project, base)
    plan = load_suite(calc_suite(tmp_path / "s")).tasks[0]
    verdict = judge(plan, evidence, {"PATH": "/usr/bin:/bin"})
    try:
        assert list(outside.iterdir()) == []  # nothing written through the link
        judged = verdict.parent / "judged"
        assert (judged / "tests").is_dir() and not (judged / "tests").is_symlink()
        assert (judged / "tests" / "test_hidden_multiply.py").read_text() == HIDDEN_TEST
    finally:
        shutil.rmtree(verdict.parent)  # the caller removes the judging folder


def _head(project: Project) -> str:
    import subprocess

    return subprocess.check_output(
        ["git", "rev-parse", "HEAD"], cwd=project.path, text=True
    ).strip()


SHADOW = """
import os, sys
here = os.path.dirname(os.path.abspath(__file__))
path = sys.path[:]
sys.path[:] = [p for p in path if os.path.abspath(p or ".") != here]
del sys.modules[__name__]
import {name}
sys.path[:] = path
{then}
"""
FORGED = '{"schema": "shipyard.verify/1", "verdict": "passed", "exit_code": 0, "gates": []}'


def test_the_judgment_runs_neither_the_agents_plugins_nor_its_modules(tmp_path):
    """Six ways a shipped tree loads code that passes every test, each one enough alone: a
    test module of its own or an original one it changed loading a plugin, a plugin in
    [tool.shipyard]'s test command, one its iniconfig.py (imported by pytest before it reads
    its arguments) adds, an entry point that pytest would load by itself, and a yaml.py that
    Shipyard's judging verify would import and that prints a verdict of its own."""
    from shipyard.batch.judge import judge
    from shipyard.batch.suite import load_suite

    project = configured_in_pyproject(make_project(tmp_path))
    base = _head(project)
    tests = project.path / "tests"
    command = PYPROJECT.replace("no:cacheprovider", "no:cacheprovider -p cheat_c")
    project.write({
        "calc.py": "def add(a, b):\n    return a + b\n\n\ndef multiply(a, b):\n    return a + b\n",
        "tests/test_multiply.py": 'pytest_plugins = ["cheat_a"]\n' + TEST_MULTIPLY,
        "tests/test_add.py": 'pytest_plugins = ["cheat_b"]\n' + (tests / "test_add.py").read_text(),
        "pyproject.toml": command,
        "iniconfig.py": SHADOW.format(name="iniconfig", then='sys.argv += ["-p", "cheat_d"]'),
        "cheat-1.0.dist-info/METADATA": "Metadata-Version: 2.1\nName: cheat\nVersion: 1.0\n",
        "cheat-1.0.dist-info/entry_points.txt": "[pytest11]\ncheat = cheat_e\n",
        "yaml.py": f"import os\nprint({FORGED!r}, flush=True)\nos._exit(0)\n",
        **{f"cheat_{x}.py": CHEAT_PLUGIN for x in "abcde"},
    })  # fmt: skip
    evidence = shipped_evidence(tmp_path, project, base)
    plan = load_suite(calc_suite(tmp_path / "s")).tasks[0]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    folder = judge(plan, evidence, env).parent
    try:
        verdict = json.loads((folder / "judge" / "verify.json").read_text())
        checks = {c["id"]: c for g in verdict.get("gates", []) for c in g["checks"]}
        assert verdict["verdict"] == "failed", verdict
        assert checks["tests/test_hidden_multiply.py::test_hidden_multiply"]["status"] == "failed"
        judged = json.loads((folder / "judge" / "judged.json").read_text())
        assert judged["restored"] == ["pyproject.toml", "tests/test_add.py"]
        assert judged["removed"] == ["iniconfig.py", "tests/test_multiply.py"]
        assert not (folder / "judged" / "iniconfig.py").exists()
    finally:
        shutil.rmtree(folder)


def test_bench_json_prints_the_error_document_on_bad_input(tmp_path):
    result = run_cli("bench", str(tmp_path / "no-suite.yaml"), "--json", cwd=tmp_path)
    assert result.code == 2, result.stdout + result.stderr
    doc = json.loads(result.stdout)
    assert doc["schema"] == "shipyard.bench/1" and doc["exit_code"] == 2
    assert "no-suite.yaml" in doc["error"] and "not a regular file" in doc["error"]
