"""Benchmark `shipyard verify` against running the same commands by hand.

    uv run python scripts/bench_verify.py [--runs N]

Reports, for each example: the median wall time of its build and test commands run by hand,
of `shipyard verify` on it, and the difference; the peak resident memory of the Shipyard
process itself (children not counted, sampled every 10 ms); and `shipyard --help` latency.
"""

from __future__ import annotations

import argparse
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
EXAMPLES = ("pycalc", "node-greet")
SLOW_TESTS = 30
"""A generated project whose suite takes about 3 s: the fixed start-up cost matters less."""


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


def by_hand(project: Path) -> float:
    commands = tomllib.loads((project / "shipyard.toml").read_text())["commands"]
    started = time.perf_counter()
    for command in [*commands.get("build", []), commands["test"]]:
        subprocess.run(command, shell=True, cwd=project, check=True, capture_output=True)
    return time.perf_counter() - started


def with_shipyard(project: Path, spec: Path) -> tuple[float, int]:
    """Wall time and peak RSS (bytes) of the shipyard process alone."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        [str(SHIPYARD), "verify", "--project", str(project), "--spec", str(spec)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    watched = psutil.Process(proc.pid)
    peak = 0
    while proc.poll() is None:
        try:
            peak = max(peak, watched.memory_info().rss)
        except psutil.NoSuchProcess:
            break
        time.sleep(0.01)
    took = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"shipyard verify failed on {project} (exit {proc.returncode})")
    return took, peak


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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        print(
            f"{'example':<12} {'by hand':>9} {'shipyard':>9} {'diff':>8} {'ratio':>7} "
            f"{'peak RSS':>9}"
        )
        for name in (*EXAMPLES, "slow-suite"):
            project = Path(tmp) / name
            if name == "slow-suite":
                slow_project(Path(tmp))
            else:
                shutil.copytree(ROOT / "examples" / name, project)
            spec = tests_only_spec(project, Path(tmp))
            by_hand(project)  # warm the file cache and bytecode
            hand, ours, peaks = [], [], []
            for _ in range(args.runs):
                hand.append(by_hand(project))
                took, peak = with_shipyard(project, spec)
                ours.append(took)
                peaks.append(peak)
            h, s = statistics.median(hand), statistics.median(ours)
            print(
                f"{name:<12} {h:>8.3f}s {s:>8.3f}s {s - h:>+7.3f}s {s / h:>6.2f}x "
                f"{max(peaks) / 2**20:>7.1f}MB"
            )
    print(f"shipyard --help: median {help_latency(args.runs) * 1000:.0f} ms over {args.runs} runs")
    print(f"(python {sys.version.split()[0]}, {os.cpu_count()} cores)")


if __name__ == "__main__":
    main()
