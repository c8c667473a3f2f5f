"""``verify --format github`` and ``--junit``: checked against the formats' own rules.

Annotations are parsed the way GitHub's runner parses workflow commands (``::name k=v,k=v::data``,
percent-escapes undone, ``%25`` last); the JUnit report is validated against the JUnit XSD in
tests/fixtures and read back by junitparser, the reader Shipyard itself uses.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from lxml import etree

from conftest import Project, run_cli
from shipyard import ci_output, junit_output
from shipyard.exceptions import SpecError
from shipyard.results import CheckResult, GateResult, Verdict

XSD = etree.XMLSchema(etree.parse(str(Path(__file__).parent / "fixtures" / "junit.xsd")))
DATA_ESCAPES = (("\r", "%0D"), ("\n", "%0A"), ("%", "%25"))
PROPERTY_ESCAPES = (("\r", "%0D"), ("\n", "%0A"), (":", "%3A"), (",", "%2C"), ("%", "%25"))
HOSTILE_ID = "say: 100%, done | twice"
SAY = json.dumps("print('50%: a,b')")

CONFIG = """
[commands]
test = "python -m pytest -q -p no:cacheprovider"
timeout = 60
"""
SPEC = f"""
task: add and say
acceptance:
  - id: add
    text: add adds
  - id: say
    text: it says so
  - id: lonely
    text: nothing covers this
checks:
  tests:
    required:
      - id: tests/test_calc.py::test_add
        covers: [add]
  cli:
    - id: "{HOSTILE_ID}"
      covers: [say]
      run: [{json.dumps(sys.executable)}, -c, {SAY}]
      expect: {{stdout_contains: ["50%: a,b\\nand more"]}}
"""
TESTS = """
from calc import add


def test_add():
    assert add(2, 3) == 5
"""


def unescape(text: str, table: tuple[tuple[str, str], ...]) -> str:
    for token, escaped in table:
        text = text.replace(escaped, token)
    return text


def parse_commands(stdout: str) -> list[dict[str, object]]:
    """Workflow commands as the runner reads them: ``::name props::data`` on a line of its own."""
    found = []
    for line in stdout.splitlines():
        if not line.startswith("::"):
            continue
        end = line.index("::", 2)
        name, _, props = line[2:end].partition(" ")
        properties = {}
        for pair in filter(None, props.split(",")):
            key, _, value = pair.partition("=")
            properties[key] = unescape(value, PROPERTY_ESCAPES)
        data = unescape(line[end + 2 :], DATA_ESCAPES)
        found.append({"name": name, "raw": line, "data": data, **properties})
    return found


def line_of(path: Path, text: str) -> int:
    return next(n for n, line in enumerate(path.read_text().splitlines(), 1) if text in line)


@pytest.fixture
def repo(tmp_path: Path) -> Project:
    """A repository whose project is in ``app/``: annotation paths start at the repository."""
    project = Project(tmp_path / "repo" / "app")
    project.write({"shipyard.toml": CONFIG, "calc.py": "def add(a, b):\n    return a - b\n",
                   "tests/test_calc.py": TESTS, "spec.yaml": SPEC})  # fmt: skip
    return project


def github_env(tmp_path: Path, repo: Project) -> dict[str, str]:
    return {
        "GITHUB_WORKSPACE": str(repo.path.parent),
        "GITHUB_STEP_SUMMARY": str(tmp_path / "s.md"),
    }


def test_failures_are_annotated_where_they_are(tmp_path: Path, repo: Project) -> None:
    reports = tmp_path / "reports"
    reports.mkdir()
    (reports / "verify.xml").write_text("an old report\n")
    env = github_env(tmp_path, repo)
    run = run_cli("verify", "--format", "github", "--junit", str(reports / "verify.xml"),
                  cwd=repo.path, env=env)  # fmt: skip
    assert run.code == 1, run.stdout + run.stderr
    assert "not verified (exit 1)" in run.stdout  # the readable log is still there
    found = {c["title"]: c for c in parse_commands(run.stdout)}
    assert all(c["name"] == "error" for c in found.values())

    say = found[f"shipyard runtime: cli {HOSTILE_ID}"]
    assert say["file"] == "app/spec.yaml"
    assert say["line"] == str(line_of(repo.path / "spec.yaml", HOSTILE_ID))
    assert "stdout does not contain '50%: a,b\\nand more'" in say["data"]
    assert "\n50%: a,b" in say["data"] or "| 50%: a,b" in say["data"]  # what it printed
    assert "\nevidence: " in say["data"]
    title = say["raw"].split("title=")[1].split("::")[0]
    assert title == "shipyard runtime%3A cli say%3A 100%25%2C done | twice"
    assert "\n" not in say["raw"] and "\r" not in say["raw"]

    add = found["shipyard tests: required tests/test_calc.py::test_add"]
    assert add["file"] == "app/tests/test_calc.py"
    assert add["line"] == str(line_of(repo.path / "tests/test_calc.py", "def test_add"))
    assert add["data"].startswith("failed: assert -1 == 5")
    lonely = found["shipyard contract: coverage lonely"]
    assert lonely["file"] == "app/spec.yaml"
    assert lonely["line"] == str(line_of(repo.path / "spec.yaml", "id: lonely"))
    assert found["shipyard tests: suite"]["file"] == "app/shipyard.toml"
    assert found["shipyard tests: suite"]["line"] == str(
        line_of(repo.path / "shipyard.toml", "test =")
    )

    summary = Path(env["GITHUB_STEP_SUMMARY"]).read_text()
    assert summary.startswith("## ❌ Shipyard: not verified (exit 1)")
    assert "| tests | ❌ failed | 2 |" in summary
    assert "| ❌ | runtime | cli say: 100%, done \\| twice |" in summary
    assert "| ✅ | contract | coverage add | covered by tests/test_calc.py::test_add |" in summary

    report = reports / "verify.xml"
    assert_valid_junit(report)
    assert sorted(p.name for p in reports.iterdir()) == ["verify.xml"]  # no temporary left
    doc = json.loads((_run_dir(repo.path) / "verdict.json").read_text())
    xml = etree.parse(str(report)).getroot()
    assert xml.get("tests") == str(sum(len(g["checks"]) for g in doc["gates"]))
    assert xml.get("failures") == "4" and xml.get("errors") == "0"
    case = xml.find(".//testcase[@name='required tests/test_calc.py::test_add']")
    assert case.get("classname") == "shipyard.tests"
    assert case.find("failure").get("message") == "failed: assert -1 == 5"
    evidence = case.find("system-out").text.splitlines()[-1].removeprefix("evidence: ")
    assert Path(evidence).is_file() and Path(evidence).is_relative_to(doc["run_dir"])


def _run_dir(project: Path) -> Path:
    (only,) = (project / ".shipyard" / "runs").iterdir()
    return only


def test_junit_is_read_back_by_a_junit_reader(tmp_path: Path, repo: Project) -> None:
    from shipyard.gates.junit import read_report

    repo.write({"calc.py": "def add(a, b):\n    return a + b\n"})
    report = tmp_path / "out.xml"
    run = run_cli("verify", "--junit", str(report), cwd=repo.path)
    assert run.code == 1  # the lonely acceptance id and the cli check still fail
    assert_valid_junit(report)
    outcomes = read_report(report, repo.path)
    assert outcomes["shipyard.tests::required tests/test_calc.py::test_add"].outcome == "passed"
    assert outcomes["shipyard.contract::coverage lonely"].outcome == "failed"
    assert outcomes[f"shipyard.runtime::cli {HOSTILE_ID}"].outcome == "failed"


def test_bad_input_is_annotated_at_its_line(tmp_path: Path, repo: Project) -> None:
    repo.write({"spec.yaml": "task: t\nacceptance:\n  - {id: a, text: b, colour: red}\n"})
    env = github_env(tmp_path, repo)
    report = tmp_path / "bad.xml"
    run = run_cli("verify", "--format", "github", "--junit", str(report), cwd=repo.path, env=env)
    assert run.code == 2, run.stdout + run.stderr
    (found,) = parse_commands(run.stdout)
    assert found["file"] == "app/spec.yaml" and found["line"] == "3"
    assert found["title"] == "shipyard: bad input"
    assert "acceptance[0].colour: unknown key 'colour'" in found["data"]
    assert "bad input" in Path(env["GITHUB_STEP_SUMMARY"]).read_text()
    assert_valid_junit(report)
    error = etree.parse(str(report)).find(".//testcase/error")
    assert "unknown key 'colour'" in error.get("message") and error.get("type") == "bad input"


def test_junit_target_problems_are_bad_input(tmp_path: Path, repo: Project) -> None:
    folder = tmp_path / "a-folder"
    folder.mkdir()
    (folder / "keep.txt").write_text("mine")
    run = run_cli("verify", "--junit", str(folder), cwd=repo.path)
    assert run.code == 2 and f"--junit: {folder} is a directory" in run.stderr
    assert (folder / "keep.txt").read_text() == "mine"
    run = run_cli("verify", "--junit", str(tmp_path / "nowhere" / "x.xml"), cwd=repo.path)
    assert run.code == 2 and "does not exist" in run.stderr
    run = run_cli("verify", "--format", "yaml", cwd=repo.path)
    assert run.code == 2 and "unknown format 'yaml' (one of text, json, github)" in run.stderr
    run = run_cli("verify", "--json", "--format", "github", cwd=repo.path)
    assert run.code == 2 and json.loads(run.stdout)["exit_code"] == 2
    assert not (repo.path / ".shipyard" / "runs").exists()  # refused before running anything


def test_escaping_follows_the_workflow_command_rules() -> None:
    message = "100% sure\r\nline: two, three"
    line = ci_output.command("error", message, {"file": "a,b:c.py", "line": "3", "title": None})
    assert line == "::error file=a%2Cb%3Ac.py,line=3::100%25 sure%0D%0Aline: two, three"
    (parsed,) = parse_commands(line)
    assert parsed["data"] == message and parsed["file"] == "a,b:c.py"
    assert "title" not in parsed
    assert ci_output.escape_data("%0A") == "%250A"  # an escape in the text stays text
    assert unescape(ci_output.escape_property("%3A,:"), PROPERTY_ESCAPES) == "%3A,:"


def test_error_annotation_without_a_place(tmp_path: Path) -> None:
    line = ci_output.error_annotation(
        SpecError("bad", file="/elsewhere/spec.yaml", line=2), tmp_path
    )
    assert line == "::error title=shipyard%3A bad input::/elsewhere/spec.yaml:2: bad"


def test_junit_carries_no_character_xml_cannot(tmp_path: Path) -> None:
    check = CheckResult(id="x\x00y", kind="cli", status="failed", message="bell\x07 esc\x1b[31m ok",
                        evidence="cli/x.log")  # fmt: skip
    skipped = CheckResult(id="later", kind="http", status="not_run", message="not run: build")
    broken = CheckResult(id="app", kind="app", status="error", message="no port")
    gate = GateResult(name="runtime", checks=(check, skipped, broken), duration=1.5)
    verdict = Verdict(run_id="v-1", run_dir=str(tmp_path), gates=(gate,), duration=2.0)
    target = tmp_path / "r.xml"
    junit_output.write(junit_output.verdict_xml(verdict), target)
    assert_valid_junit(target)
    root = etree.parse(str(target)).getroot()
    assert (root.get("failures"), root.get("errors"), root.get("skipped")) == ("1", "1", "1")
    failure = root.find(".//failure")
    assert failure.text == "bell\ufffd esc\ufffd[31m ok" and failure.get("type") == "cli"
    assert root.find(".//skipped").get("message") == "not run: build"
    out = root.find(".//testcase").find("system-out").text
    assert out.endswith(f"evidence: {tmp_path / 'cli/x.log'}")


def assert_valid_junit(path: Path) -> None:
    doc = etree.parse(str(path))
    assert XSD.validate(doc), XSD.error_log
    root = doc.getroot()
    for suite in root.iter("testsuite"):
        cases = suite.findall("testcase")
        assert suite.get("tests") == str(len(cases))
        for attr, tag in (("failures", "failure"), ("errors", "error"), ("skipped", "skipped")):
            assert suite.get(attr) == str(sum(c.find(tag) is not None for c in cases))
