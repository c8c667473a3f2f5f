"""Running commands: a process group each, a timeout, output to a file, a capped tail in memory.

Nothing here ever waits without a bound, and no process it started outlives the call: on
timeout, on Ctrl-C and after a normal exit the whole process group is signalled.

Every command starts through :mod:`shipyard.launcher` (its parent, holding only the command's
environment; it dies with Shipyard, even by ``kill -9``, and caps the output files). Shipyard is a
child subreaper: what leaves a process group (``setsid``, a daemon's double fork) is re-parented
to it, and :func:`kill_adopted` ends those at the end of a verify, a tool call and a run.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import select
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING

from shipyard.exceptions import CommandNotFound

if TYPE_CHECKING:
    from shipyard.lanes import Limit

SHELL_CHARS = set("|&;<>()$`*?[]{}~!#\n\\")
SHELLS = frozenset({"sh", "bash", "dash", "zsh", "ksh", "ash"})
"""A command run through one of these that exits 127 saying "not found" lacks a program."""
TAIL_BYTES = 16_384
KILL_GRACE = 2.0
TAG_VARIABLE = "SHIPYARD_PROCESS_TAG"
"""Set in the environment of every process started here, so escapees can be found."""
LAUNCHER = Path(__file__).with_name("launcher.py")
LOG_HEAD = LOG_TAIL = 4 << 20
"""Bytes of a command's output kept at the start and at the end of its log file."""
PR_SET_CHILD_SUBREAPER = 36
_TAGS: dict[int, bytes] = {}
_STARTED: set[int] = set()
"""Launchers started here and not yet reaped: our own children, never "adopted"."""
_LOCK = threading.Lock()
_SUBREAPER: list[bool] = []


@dataclass(frozen=True, kw_only=True)
class CommandResult:
    command: str
    exit_code: int | None
    """None when it was killed at its timeout."""
    duration: float
    timed_out: bool
    log: Path
    tail: str

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out


def to_argv(command: str | Sequence[str]) -> list[str]:
    """A shell string runs through /bin/sh only when it uses shell syntax; argv lists run as is."""
    if not isinstance(command, str):
        return list(command)
    try:
        argv = shlex.split(command)
    except ValueError:
        argv = []
    if not argv or "=" in argv[0] or any(ch in SHELL_CHARS for ch in command):
        return ["/bin/sh", "-c", command]
    return argv


def require_program(argv: Sequence[str], env: Mapping[str, str], cwd: Path, what: str) -> None:
    program = argv[0]
    if os.sep in program:
        path = Path(program) if Path(program).is_absolute() else cwd / program
        if path.exists():
            return
    elif shutil.which(program, path=env.get("PATH", os.defpath)):
        return
    raise CommandNotFound(
        f"{what}: {program!r} was not found on PATH; install it or fix the command"
    )


def start(
    argv: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    stdout: Path,
    stderr: Path | None = None,
    stdin: bytes | None = None,
    head: int = LOG_HEAD,
    tail: int = LOG_TAIL,
    pass_fds: Sequence[int] = (),
) -> subprocess.Popen[bytes]:
    """Start ``argv`` through the launcher, in a new process group, with its output going to
    files (the first ``head`` and last ``tail`` bytes of each). ``env`` is all it gets: scrub
    it first where the command is not to be trusted (:func:`shipyard.environment.scrubbed`).
    ``pass_fds`` stay open in the launcher and the command (an environment handover)."""
    stdout.parent.mkdir(parents=True, exist_ok=True)
    become_subreaper()
    tag = secrets.token_hex(8)
    launcher = [sys.executable, "-I", "-S", str(LAUNCHER), str(os.getpid()), str(head), str(tail)]
    launcher.append(env.get("LC_CTYPE", "-"))
    with open(stdout, "wb") as out, open(stderr or os.devnull, "wb") as err, _LOCK:
        proc = subprocess.Popen(
            [*launcher, "--", *argv],
            cwd=cwd,
            env={**env, TAG_VARIABLE: tag},
            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            stdout=out,
            stderr=err if stderr is not None else subprocess.STDOUT,
            start_new_session=True,
            pass_fds=tuple(pass_fds),
        )
        _STARTED.add(proc.pid)
    _TAGS[proc.pid] = f"{TAG_VARIABLE}={tag}".encode()
    if stdin is not None and proc.stdin is not None:
        # In a thread: a child that never reads would block the write, and the timeout with it.
        threading.Thread(target=_feed, args=(proc.stdin, stdin), daemon=True).start()
    return proc


def _feed(pipe: IO[bytes], data: bytes) -> None:
    with contextlib.suppress(BrokenPipeError, OSError):
        pipe.write(data)
    with contextlib.suppress(BrokenPipeError, OSError):
        pipe.close()


def stop_group(proc: subprocess.Popen[bytes], grace: float = KILL_GRACE) -> None:
    """SIGTERM the process group, SIGKILL what is left after ``grace`` seconds, and return only
    when no member of the group is still running; always reaps ``proc``."""
    pgid = proc.pid
    _signal_group(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while group_members(pgid) and time.monotonic() < deadline:
        proc.poll()
        time.sleep(0.01)
    _signal_group(pgid, signal.SIGKILL)
    proc.wait()
    with _LOCK:
        _STARTED.discard(proc.pid)
    deadline = time.monotonic() + grace
    while group_members(pgid) and time.monotonic() < deadline:
        time.sleep(0.01)
    if (tag := _TAGS.pop(proc.pid, None)) is not None:
        _kill_escaped(tag)


def become_subreaper() -> None:
    """Once per process: orphans of anything started here are re-parented to this process."""
    if _SUBREAPER:
        return
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    _SUBREAPER.append(libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0)


def adopted() -> list[int]:
    """Our children that we never started: processes re-parented to us because they left
    their process group (their session is not ours, and they are no launcher of ours). Python's
    own children (git, the browser driver) share our session and are never counted."""
    me, session = os.getpid(), os.getsid(0)
    found = []
    for pid in _children(me):
        try:
            if os.getsid(pid) != session and pid not in _STARTED:
                found.append(pid)
        except ProcessLookupError:
            continue
    return found


def _children(parent: int) -> list[int]:
    """Live or zombie processes whose parent is ``parent``."""
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as fh:
                stat = fh.read()
        except OSError:
            continue
        if int(stat[stat.rfind(b")") + 2 :].split()[1]) == parent:
            found.append(int(entry.name))
    return found


def kill_adopted(rounds: int = 50) -> int:
    """SIGKILL and reap every adopted process (their children, re-parented to us in turn, go
    in the next round); waits only on those pids, never ``waitpid(-1)``, so the exit status of
    a command of ours is never taken from it. How many there were."""
    killed = 0
    for _ in range(rounds):
        with _LOCK:
            pids = adopted()
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        if not pids:
            return killed
        killed += len(pids)
        deadline = time.monotonic() + KILL_GRACE
        waiting = set(pids)
        while waiting and time.monotonic() < deadline:
            for pid in list(waiting):
                try:
                    if os.waitpid(pid, os.WNOHANG)[0] == pid:
                        waiting.discard(pid)
                except ChildProcessError:
                    waiting.discard(pid)
            time.sleep(0.005 if waiting else 0)
    return killed


def kill_tagged(variable: str, value: str) -> int:
    """Kill every process but this one whose environment holds ``variable=value`` (what a
    crashed run left behind: its app, its test suite); how many there were."""
    return _kill_escaped(f"{variable}={value}".encode())


def _kill_escaped(tag: bytes) -> int:
    """Kill what left the process group (``setsid``, a daemon's double fork) but still carries
    the environment tag it was started with."""
    killed = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry.name}/environ", "rb") as fh:
                found = tag in fh.read().split(b"\0")
        except OSError:
            continue
        if found:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(int(entry.name), signal.SIGKILL)
                killed += 1
    return killed


def group_members(pgid: int) -> list[int]:
    """Live (not zombie) processes in process group ``pgid``."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return []
    except PermissionError:
        pass
    members = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as fh:
                stat = fh.read()
        except OSError:
            continue
        fields = stat[stat.rfind(b")") + 2 :].split()
        if int(fields[2]) == pgid and fields[0] != b"Z":
            members.append(int(entry.name))
    return members


def interrupt_group(proc: subprocess.Popen[bytes], grace: float = KILL_GRACE) -> None:
    """SIGINT the process group, as Ctrl-C would, so a test runner writes the partial report of
    what finished; SIGKILL what is left after ``grace`` seconds (``stop_group``)."""
    _signal_group(proc.pid, signal.SIGINT)
    wait_exit(proc, grace)
    stop_group(proc, grace=0.2)


def wait_exit(proc: subprocess.Popen[bytes], timeout: float) -> bool:
    """Wait up to ``timeout`` seconds for ``proc`` to exit; True when it did.

    Uses a pidfd where the kernel has one, so the wake-up is immediate rather than the up to
    50 ms of ``Popen.wait``'s polling."""
    try:
        fd = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):
        fd = None
    if fd is not None:
        try:
            select.select([fd], [], [], timeout)
        finally:
            os.close(fd)
    try:
        proc.wait(timeout=0 if fd is not None else timeout)
    except subprocess.TimeoutExpired:
        return False
    return True


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def run(
    command: str | Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    timeout: float,
    log: Path,
    stderr_log: Path | None = None,
    stdin: bytes | None = None,
    what: str = "command",
    interrupt: bool = False,
    limit: Limit | None = None,
) -> CommandResult:
    """Run to the end or to ``timeout``; at the timeout the group is stopped with SIGTERM, or,
    with ``interrupt``, with SIGINT first (``interrupt_group``) so a partial report is written.
    ``limit``: a time limit another thread may shorten while the command runs (timed out)."""
    argv = to_argv(command)
    require_program(argv, env, cwd, what)
    shown = command if isinstance(command, str) else shlex.join(command)
    started = time.monotonic()
    proc = start(argv, cwd=cwd, env=env, stdout=log, stderr=stderr_log, stdin=stdin)
    timed_out = False
    try:
        timed_out = not _wait(proc, started, timeout, limit)
        if timed_out and interrupt:
            interrupt_group(proc)
    finally:
        # Also on Ctrl-C; and after a normal exit, children it left behind go too.
        stop_group(proc, grace=KILL_GRACE if timed_out else 0.2)
    duration = time.monotonic() - started
    exit_code = None if timed_out else proc.returncode
    if exit_code == 127 and Path(argv[0]).name in SHELLS and _not_found(tail_of(log)):
        raise CommandNotFound(f"{what}: a program in {shown!r} was not found:\n{tail_of(log, 5)}")
    return CommandResult(
        command=shown,
        exit_code=exit_code,
        duration=duration,
        timed_out=timed_out,
        log=log,
        tail=tail_of(log),
    )


def _not_found(tail: str) -> bool:
    return "not found" in tail or "No such file or directory" in tail


LIMIT_POLL = 0.1
"""Seconds between looks at a ``Limit`` (an exit still wakes the wait at once)."""


def _wait(
    proc: subprocess.Popen[bytes], started: float, timeout: float, limit: Limit | None
) -> bool:
    """Wait for ``proc`` within its time limit; True when it exited."""
    if limit is None:
        return wait_exit(proc, timeout)
    while True:
        remaining = started + limit.allowed(started, timeout) - time.monotonic()
        if remaining <= 0:
            return proc.poll() is not None
        if wait_exit(proc, min(remaining, LIMIT_POLL)):
            return True


def kill_started() -> None:
    """SIGKILL the process group of every command started here and still running (Ctrl-C
    while several run in threads: each thread's ``run`` then returns at once and cleans up)."""
    with _LOCK:
        pids = list(_STARTED)
    for pid in pids:
        _signal_group(pid, signal.SIGKILL)


def tail_of(path: Path, lines: int = 40) -> str:
    """The last ``lines`` lines of a file, reading at most TAIL_BYTES of it."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - TAIL_BYTES))
            data = fh.read()
    except FileNotFoundError:
        return ""
    text = data.decode("utf-8", errors="replace")
    return "\n".join(text.splitlines()[-lines:])
