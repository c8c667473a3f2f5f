"""The composite ``action.yml``: its shell steps run here as the runner would run them
(``bash --noprofile --norc -eo pipefail``, with its files and variables) against a bundled
example; the steps that use other actions are checked for what they are given."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

from conftest import EXAMPLES, ROOT, Project

EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")


def read_outputs(path: Path) -> dict[str, str]:
    """``$GITHUB_OUTPUT`` as the runner reads it: ``name=value`` or ``name<<DELIM`` blocks."""
    outputs: dict[str, str] = {}
    lines = iter(path.read_text().splitlines()) if path.exists() else iter(())
    for line in lines:
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            name, delimiter = line.split("<<", 1)
            value = []
            for more in lines:
                if more == delimiter:
                    break
                value.append(more)
            outputs[name] = "\n".join(value)
        elif "=" in line:
            name, value = line.split("=", 1)
            outputs[name] = value
    return outputs


class Runner:
    """Just enough of a runner for a composite action: inputs, step outputs, a few contexts."""

    def __init__(self, action: dict[str, Any], inputs: dict[str, str], work: Path) -> None:
        self.action = action
        self.inputs = {k: v.get("default", "") for k, v in action["inputs"].items()} | inputs
        self.steps: dict[str, dict[str, str]] = {}
        self.work = work
        self.temp = work.parent / "runner-temp"
        self.temp.mkdir()
        self.summary = self.temp / "summary.md"

    def value(self, expression: str) -> str:
        if m := re.fullmatch(r"inputs\.([\w-]+)", expression):
            return self.inputs[m.group(1)]
        if m := re.fullmatch(r"steps\.([\w-]+)\.outputs\.([\w-]+)", expression):
            return self.steps.get(m.group(1), {}).get(m.group(2), "")
        if expression == "github.action_path":
            return str(ROOT)
        raise AssertionError(f"an expression this test does not know: {expression}")

    def expand(self, text: str) -> str:
        return EXPRESSION.sub(lambda m: self.value(m.group(1)), str(text))

    def condition(self, text: str) -> bool:
        m = re.fullmatch(r"always\(\) && steps\.([\w-]+)\.outputs\.([\w-]+) != ''", text)
        assert m, f"a condition this test does not know: {text}"
        return self.value(f"steps.{m.group(1)}.outputs.{m.group(2)}") != ""

    def run(self, step: dict[str, Any]) -> subprocess.CompletedProcess[str]:
        assert step["shell"] == "bash" and not EXPRESSION.search(step["run"]), step
        outputs = self.temp / f"output-{len(self.steps)}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
        env |= {k: self.expand(v) for k, v in step.get("env", {}).items()}
        env |= {"GITHUB_OUTPUT": str(outputs), "GITHUB_STEP_SUMMARY": str(self.summary),
                "GITHUB_WORKSPACE": str(self.work), "RUNNER_TEMP": str(self.temp),
                "GITHUB_ACTION_PATH": str(ROOT), "UV_OFFLINE": "1", "CI": "true"}  # fmt: skip
        argv = ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]]
        done = subprocess.run(argv, cwd=self.work, env=env, capture_output=True, text=True,
                              timeout=300, stdin=subprocess.DEVNULL)  # fmt: skip
        self.steps[step.get("id", f"step-{len(self.steps)}")] = read_outputs(outputs)
        return done


def test_the_action_verifies_a_bundled_example(tmp_path: Path) -> None:
    action = yaml.safe_load((ROOT / "action.yml").read_text())
    assert action["runs"]["using"] == "composite"
    assert {"spec", "base", "args"} <= set(action["inputs"])
    work = tmp_path / "checkout"
    shutil.copytree(EXAMPLES / "pycalc", work)
    Project(work).commit("the example")  # a checkout: a git repository
    runner = Runner(action, {}, work)
    results = []
    uploaded: dict[str, str] = {}
    for step in action["runs"]["steps"]:
        uses = step.get("uses", "")
        if uses.startswith("actions/setup-python@"):
            assert runner.expand(step["with"]["python-version"]) == "3.12"
            continue  # this machine's Python stands in for it
        if uses.startswith("actions/upload-artifact@"):
            assert runner.condition(step["if"])
            uploaded = {k: runner.expand(v) if isinstance(v, str) else v
                        for k, v in step["with"].items()}  # fmt: skip
            continue
        assert not uses, f"a step this test does not know: {uses}"
        results.append(done := runner.run(step))
        assert done.returncode == 0, done.stdout + done.stderr

    install, verify = results
    assert Path(runner.steps["install"]["shipyard"]).is_file()
    assert "verified (exit 0)" in verify.stdout, verify.stdout + verify.stderr
    assert "::error" not in verify.stdout
    outputs = runner.steps["verify"]
    assert outputs["verdict"] == "passed" and outputs["exit-code"] == "0"
    run_dir = Path(outputs["run-dir"])
    assert run_dir.is_relative_to(work / ".shipyard" / "runs")
    assert uploaded["path"] == str(run_dir) and (run_dir / "verdict.json").is_file()
    assert uploaded["name"] == "shipyard-evidence" and uploaded["include-hidden-files"] is True
    assert "## ✅ Shipyard: verified (exit 0)" in runner.summary.read_text()
    report = (work / "shipyard-junit.xml").read_text()
    assert 'name="required tests/test_calc.py::test_add"' in report

    # the same steps on a broken change: the step fails with verify's exit code, and still
    # leaves its outputs for the upload that runs always()
    (work / "pycalc" / "__init__.py").write_text(
        (work / "pycalc" / "__init__.py").read_text().replace("return a + b", "return a - b")
    )
    runner.inputs["args"] = "--spec spec.yaml"
    failed = runner.run(action["runs"]["steps"][2])
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert (
        "::error file=pycalc/" in failed.stdout
        or "::error file=tests/test_calc.py" in failed.stdout
    )
    assert runner.steps["verify"]["verdict"] == "failed"
    assert runner.condition(action["runs"]["steps"][3]["if"])
