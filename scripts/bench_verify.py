"""Benchmark `shipyard verify` against running the same commands by hand.

    uv run python scripts/bench_verify.py [--runs N] [--only NAME ...]

For each bundled example, a generated slow suite and a generated fix of an infinite loop
verified with ``--base`` (its base hangs):

* ``by hand``: the build and test commands run one after the other by hand;
* ``chain``: the slowest chain. Without a runtime gate (and for the hanging base, whose base
  runs add nothing Shipyard must wait for beyond their bound) that is the commands by hand; with
  one, the build's ``duration`` plus the largest other gate ``duration`` of the verify's own
  ``--json`` (app, HTTP and browser checks cannot be run by hand here);
* ``verify``: Shipyard's wall time with the example's full spec, and ``ratio`` verify / chain;
* ``fixed``: a verify with the tests-only spec minus the commands by hand (the fixed cost).

Medians of N runs (default 5); the peak resident memory of the Shipyard process itself
(children not counted, sampled every 10 ms); `shipyard --help` latency; and the floor under
``fixed``: a fresh Python that only loads pycalc's config and spec (the pydantic models
Shipyard validates them with), next to a Python that does nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
SHIPYARD = Path(sys.executable).parent / "shipyard"
EXAMPLES = ("pycalc", "node-greet", "todo")
SLOW_TESTS = 30
"""A generated project whose suite takes about 3 s: the fixed start-up cost matters less."""
HANG_TIMEOUT = 60
"""The hanging-base project's command timeout: what its base runs hang to without a bound."""


def slow_project(folder: Path) -> Path:
    project = folder / "slow-suite"
    (project / "tests").mkdir(parents=True)
    (project / "pytest.ini").write_text("[pytest]\n")
    (project / "shipyard.toml").write_text(
        '[commands]\ntest = "python -m pytest -q -p no:cacheprovider"\n'
    )
    body = "".join(
        f"def test_{i}():\n    time.sleep(0.1)\n    assert {i} + 1 == {i + 1}\n\n"
        for i in range(SLOW_TESTS)
    )
    (project / "tests" / "test_slow.py").write_text("import time\n\n" + body)
    (project / "spec.yaml").write_text(
        "task: slow\nacceptance: [{id: a, text: adds}]\nchecks:\n  tests:\n    required:\n"
        "      - {id: tests/test_slow.py::test_0, covers: [a]}\n"
    )
    return project


HANG_BASE = (
    "def halve(n):\n    while n != 1:\n        n = n // 2 if n % 2 == 0 else n\n    return n\n"
)
HANG_FIX = "def halve(n):\n    while n > 1:\n        n //= 2\n    return n\n"


def hanging_project(folder: Path) -> Path:
    """A fix of an infinite loop: at the base, ``halve(3)`` never returns, and the base's own
    suite reaches it too; the fix adds the required test. Verified with ``--base HEAD``."""
    project = folder / "hang-base"
    (project / "tests").mkdir(parents=True)
    (project / "pytest.ini").write_text("[pytest]\n")
    (project / "shipyard.toml").write_text(
        f'[commands]\ntest = "python -m pytest -q -p no:cacheprovider"\ntimeout = {HANG_TIMEOUT}\n'
    )
    (project / "halve.py").write_text(HANG_BASE)
    (project / "tests" / "test_halve.py").write_text(
        "from halve import halve\n\n\ndef test_even():\n    assert halve(8) == 1\n\n\n"
        "def test_odd():\n    assert halve(3) == 1\n"
    )
    (project / "spec.yaml").write_text(
        "task: halve ends\nacceptance: [{id: ends, text: halve ends for odd numbers}]\n"
        "checks:\n  tests:\n    required:\n"
        "      - {id: tests/test_ends.py::test_odd_ends, covers: [ends]}\n"
    )
    git = ["git", "-c", "user.name=bench", "-c", "user.email=bench@localhost"]
    subprocess.run([*git, "init", "-q"], cwd=project, check=True)
    subprocess.run([*git, "add", "-A"], cwd=project, check=True)
    subprocess.run([*git, "commit", "-qm", "base"], cwd=project, check=True)
    (project / "halve.py").write_text(HANG_FIX)
    (project / "tests" / "test_ends.py").write_text(
        "from halve import halve\n\n\ndef test_odd_ends():\n    assert halve(7) == 1\n"
    )
    return project


def by_hand(project: Path) -> float:
    commands = tomllib.loads((project / "shipyard.toml").read_text())["commands"]
    started = time.perf_counter()
    for command in [*commands.get("build", []), commands["test"]]:
        subprocess.run(command, shell=True, cwd=project, check=True, capture_output=True)
    return time.perf_counter() - started


def with_shipyard(project: Path, spec: Path, base: str | None) -> tuple[float, int, float]:
    """Wall time, peak RSS (bytes) of the shipyard process alone, and its slowest chain from
    its own ``--json``: the build's duration plus the largest of the other gates'."""
    argv = [str(SHIPYARD), "verify", "--project", str(project), "--spec", str(spec), "--json"]
    argv += ["--no-cache"] + (["--base", base] if base else [])
    started = time.perf_counter()
    with tempfile.TemporaryFile() as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.DEVNULL)
        watched = psutil.Process(proc.pid)
        peak = 0
        while proc.poll() is None:
            try:
                peak = max(peak, watched.memory_info().rss)
            except psutil.NoSuchProcess:
                break
            time.sleep(0.01)
        took = time.perf_counter() - started
        out.seek(0)
        report = out.read()
    if proc.returncode not in (0, 1):
        raise SystemExit(f"shipyard verify could not check {project} (exit {proc.returncode})")
    if proc.returncode == 1:
        print(f"  (not verified: {project.name}, exit 1)", flush=True)
    took_by = {g["name"]: g.get("duration") or 0.0 for g in json.loads(report)["gates"]}
    chain = took_by.pop("build", 0.0) + max(took_by.values(), default=0.0)
    return took, peak, chain


def tests_only_spec(project: Path, folder: Path) -> Path:
    """The example's spec without runtime checks: the same work as the commands by hand."""
    import yaml

    spec = yaml.safe_load((project / "spec.yaml").read_text())
    checks = spec.get("checks", {})
    spec["checks"] = {"tests": checks.get("tests", {})}
    covered = {a for t in spec["checks"]["tests"].get("required", []) for a in t.get("covers", [])}
    spec["acceptance"] = [a for a in spec["acceptance"] if a["id"] in covered]
    target = folder / f"{project.name}.yaml"
    target.write_text(yaml.safe_dump(spec))
    return target


def help_latency(runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([str(SHIPYARD), "--help"], check=True, capture_output=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


LOAD_ONLY = (
    "import sys\nfrom pathlib import Path\nfrom shipyard.config import load_config\n"
    "from shipyard.spec import load_spec\n"
    "load_config(Path(sys.argv[1])); load_spec(Path(sys.argv[1]) / 'spec.yaml')\n"
)


def floor(runs: int) -> tuple[float, float]:
    """Medians: a fresh Python loading pycalc's config and spec; a fresh Python alone."""
    project = str(ROOT / "examples" / "pycalc")
    load, bare = [], []
    for _ in range(runs):
        for argv, times in (([sys.executable, "-c", LOAD_ONLY, project], load),
                            ([sys.executable, "-c", "pass"], bare)):  # fmt: skip
            started = time.perf_counter()
            subprocess.run(argv, check=True, capture_output=True)
            times.append(time.perf_counter() - started)
    return statistics.median(load), statistics.median(bare)


def prepare(name: str, tmp: Path) -> tuple[Path, str | None]:
    if name == "slow-suite":
        return slow_project(tmp), None
    if name == "hang-base":
        return hanging_project(tmp), "HEAD"
    project = tmp / name
    shutil.copytree(ROOT / "examples" / name, project)
    return project, None


def bench(name: str, tmp: Path, runs: int) -> str:
    project, base = prepare(name, tmp)
    spec = project / "spec.yaml"
    tests_only = tests_only_spec(project, tmp)
    if base is None:
        by_hand(project)  # warm the file cache and bytecode
    hand, full, fixed, largest, peaks = [], [], [], [], []
    for _ in range(runs):
        if base is None:
            hand.append(by_hand(project))
        else:  # the fixed head's own suite: the base's hangs
            hand.append(_head_suite(project))
        took, peak, gate = with_shipyard(project, spec, base)
        full.append(took)
        largest.append(gate)
        peaks.append(peak)
        if base is None:
            fixed.append(with_shipyard(project, tests_only, None)[0] - hand[-1])
    h, s, g = statistics.median(hand), statistics.median(full), statistics.median(largest)
    import yaml

    checks = yaml.safe_load(spec.read_text()).get("checks", {})
    runtime = any(checks.get(kind) for kind in ("http", "cli", "ui"))
    chain = g if runtime else h
    f = f"{statistics.median(fixed):>+7.3f}s" if fixed else f"{'-':>8}"
    return (
        f"{name:<11} {h:>8.3f}s {chain:>8.3f}s {s:>8.3f}s {s / chain:>6.2f}x {s - chain:>+7.3f}s "
        f"{f} {max(peaks) / 2**20:>7.1f}MB"
    )


def _head_suite(project: Path) -> float:
    started = time.perf_counter()
    test = "python -m pytest -q -p no:cacheprovider"
    subprocess.run(test, shell=True, cwd=project, check=True, capture_output=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--only", nargs="*", default=None)
    args = parser.parse_args()
    names = args.only or [*EXAMPLES, "slow-suite", "hang-base"]
    print(
        f"{'project':<11} {'by hand':>9} {'chain':>9} {'verify':>9} {'ratio':>7} {'-chain':>8} "
        f"{'fixed':>8} {'peak RSS':>9}"
    )
    for name in names:
        with tempfile.TemporaryDirectory() as tmp:
            print(bench(name, Path(tmp), args.runs), flush=True)
    print(f"shipyard --help: median {help_latency(args.runs) * 1000:.0f} ms over {args.runs} runs")
    load, bare = floor(max(args.runs, 5))
    print(
        f"floor: a fresh python loading pycalc's config and spec {load * 1000:.0f} ms "
        f"(python alone {bare * 1000:.0f} ms)"
    )
    print(f"(python {sys.version.split()[0]}, {os.cpu_count()} cores, medians of {args.runs})")


if __name__ == "__main__":
    main()
