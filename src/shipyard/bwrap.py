"""``[sandbox] kind = "bwrap"``: the ``run`` tool and a run's whole verify inside bubblewrap.

One sandbox per ``run`` command, and one for each verify (so the app, the HTTP probes and the
browser share its loopback): the file system read-only but for the worktree, the verify's
evidence folder and what git needs to work in a worktree (``worktrees``, ``objects``, ``refs``,
``logs`` of the repository; never its ``hooks`` nor ``config``), a private ``/tmp``, its own
PID namespace, and no network but its own loopback.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from shipyard.exceptions import EnvironmentProblem, InputError

if TYPE_CHECKING:
    from shipyard.loop.context import RunContext
    from shipyard.results import Verdict

HINT = (
    'install bubblewrap (Debian/Ubuntu: apt-get install bubblewrap) or set [sandbox] kind = "none"'
)


def require() -> None:
    """EnvironmentProblem (exit 3) unless ``bwrap`` is there and can make a sandbox here."""
    if shutil.which("bwrap") is None:
        raise EnvironmentProblem(f'[sandbox] kind = "bwrap", but bwrap is not on PATH: {HINT}')
    probe = command(["true"], writable=(), cwd=Path("/"))
    try:
        done = subprocess.run(probe, capture_output=True, text=True, timeout=20,
                              stdin=subprocess.DEVNULL)  # fmt: skip
    except subprocess.TimeoutExpired as exc:
        raise EnvironmentProblem("bwrap did not start a sandbox within 20 s") from exc
    if done.returncode != 0:
        raise EnvironmentProblem(
            f"bwrap cannot make a sandbox on this machine: {done.stderr.strip()[:300]}; {HINT}"
        )


def command(
    argv: Sequence[str], *, writable: Iterable[Path], cwd: Path, readable: Iterable[Path] = ()
) -> list[str]:
    """``argv`` run inside a fresh sandbox, with ``readable`` folders visible (the private
    ``/tmp`` hides what lives there) and ``writable`` ones writable."""
    args = [
        "bwrap", "--die-with-parent", "--new-session", "--unshare-net", "--unshare-pid",
        "--unshare-ipc", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc",
        "--tmpfs", "/tmp",
    ]  # fmt: skip
    for flag, paths in (("--ro-bind", readable), ("--bind", writable)):
        args += [arg for path in paths if path.exists() for arg in (flag, str(path), str(path))]
    return [*args, "--chdir", str(cwd), "--", *argv]


def git_folders(ctx: RunContext) -> tuple[list[Path], list[Path]]:
    """The repository's git folder (readable) and what a worktree's git writes (writable)."""
    from shipyard.gitguard import common_dir

    git_dir = common_dir(ctx.project)
    package = Path(__file__).resolve().parent.parent  # an editable install's src/, or site-packages
    python = [Path(sys.prefix), Path(sys.base_prefix), package]  # Shipyard itself, wherever it is
    return [*python, git_dir], [git_dir / name for name in ("worktrees", "objects", "refs", "logs")]


def tool_wrapper(ctx: RunContext) -> Callable[[list[str]], list[str]]:
    """What the ``run`` tool puts around each command."""
    readable, writable = git_folders(ctx)
    writable = [ctx.worktree, *writable]

    def wrap(argv: list[str]) -> list[str]:
        return command(argv, readable=readable, writable=writable, cwd=ctx.workdir)

    return wrap


def verify(ctx: RunContext, folder: Path, environ: Mapping[str, str]) -> Verdict:
    """``shipyard verify`` of the worktree with the locked spec, inside one sandbox; its verdict
    read back from the evidence folder. Raises what the verify inside raised."""
    from shipyard import process
    from shipyard.results import Verdict

    folder.mkdir(parents=True)
    request = folder / "sandbox-request.json"
    request.write_text(json.dumps({
        "project": str(ctx.workdir), "spec": str(ctx.spec_lock), "base": ctx.base_sha,
        "evidence": str(folder), "config": ctx.config.model_dump(mode="json"),
    }))  # fmt: skip
    argv = [sys.executable, "-m", "shipyard.sandboxed", str(request)]
    readable, writable = git_folders(ctx)
    wrapped = command(
        argv, readable=[*readable, ctx.evidence], writable=[ctx.worktree, folder, *writable],
        cwd=ctx.workdir,
    )  # fmt: skip
    result = process.run(wrapped, cwd=ctx.workdir, env=environ, timeout=ctx.config.budget.wall,
                         log=folder / "sandbox.log", what="bwrap")  # fmt: skip
    if (verdict := folder / "verdict.json").is_file():
        return Verdict.from_json(json.loads(verdict.read_text()))
    if (error := folder / "sandbox-error.json").is_file():
        found = json.loads(error.read_text())
        kind = InputError if found["exit_code"] == 2 else EnvironmentProblem
        raise kind(found["error"])
    raise EnvironmentProblem(
        f"the sandboxed verify ended without a verdict (exit {result.exit_code}):\n{result.tail}"
    )
