"""Benchmark the verdict cache: how long an unchanged tree takes to be answered.

    uv run python scripts/bench_cache.py [--runs N] [--files N]

On a copy of examples/pycalc (a git repository, plus N extra tracked files): the first verify
(the gates run), then, N times each, the median of: the in-process cache answer (``verify()``,
what the loop and the hook call), ``shipyard verify --json`` from a shell, and ``shipyard hook
claude`` answering a Stop event. The target for the cache answer is under 0.2 s.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHIPYARD = Path(sys.executable).parent / "shipyard"
TARGET = 0.2


def project(folder: Path, files: int) -> Path:
    target = folder / "pycalc"
    shutil.copytree(ROOT / "examples" / "pycalc", target)
    extra = target / "extra"
    extra.mkdir()
    for i in range(files):
        (extra / f"module_{i}.py").write_text(f"VALUE = {i}\n" * 20)
    (target / ".gitignore").write_text("__pycache__/\n")
    for args in (["init", "-q"], ["add", "-A"], ["-c", "user.email=b@e", "-c", "user.name=b",
                                                 "commit", "-qm", "bench"]):  # fmt: skip
        subprocess.run(["git", *args], cwd=target, check=True)
    return target


def timed(fn, runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--files", type=int, default=500)
    args = parser.parse_args()
    from shipyard.verify import verify

    with tempfile.TemporaryDirectory(prefix="bench-cache-") as tmp:
        path = project(Path(tmp), args.files)
        started = time.perf_counter()
        first = verify(path)
        print(f"first verify (gates run): {time.perf_counter() - started:.2f}s, {first.status}")
        hit = verify(path)
        assert hit.extra.get("cached") is True, "the second verify did not come from the cache"

        in_process = timed(lambda: verify(path), args.runs)

        def cli() -> None:
            out = subprocess.run([str(SHIPYARD), "verify", "--json", "-C", str(path)],
                                 capture_output=True, text=True, check=False)  # fmt: skip
            assert json.loads(out.stdout)["cached"] is True

        event = json.dumps({"hook_event_name": "Stop", "session_id": "b", "cwd": str(path)})

        def hook() -> None:
            out = subprocess.run([str(SHIPYARD), "hook", "claude"], input=event,
                                 capture_output=True, text=True, check=True)  # fmt: skip
            assert out.stdout.strip() == "{}", out.stdout

        hook()  # the session's first stop verifies in hook mode; later ones are cache hits
        cli_time = timed(cli, args.runs)
        hook_time = timed(hook, args.runs)
    verdict = "meets" if in_process < TARGET else "MISSES"
    print(f"tracked files: {args.files + 12}, runs: {args.runs} (medians)")
    print(f"cache answer in process (verify()):     {in_process * 1000:7.1f} ms  "
          f"({verdict} the {TARGET * 1000:.0f} ms target)")  # fmt: skip
    print(f"shipyard verify --json, whole process:  {cli_time * 1000:7.1f} ms")
    print(f"shipyard hook claude, whole process:    {hook_time * 1000:7.1f} ms")


if __name__ == "__main__":
    main()
