"""Running commands: a process group each, a timeout, output to a file, a capped tail in memory.

Nothing here ever waits without a bound, and no process it started outlives the call: on
timeout, on Ctrl-C and after a normal exit the whole process group is signalled.
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
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from shipyard.exceptions import CommandNotFound

SHELL_CHARS = set("|&;<>()$`*?[]{}~!#\n\\")
TAIL_BYTES = 16_384
KILL_GRACE = 2.0
TAG_VARIABLE = "SHIPYARD_PROCESS_TAG"
"""Set in the environment of every process started here, so escapees can be found."""
_TAGS: dict[int, bytes] = {}


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
) -> subprocess.Popen[bytes]:
    """Start ``argv`` in a new process group with its output going to files."""
    stdout.parent.mkdir(parents=True, exist_ok=True)
    tag = secrets.token_hex(8)
    with open(stdout, "wb") as out, open(stderr or os.devnull, "wb") as err:
        proc = subprocess.Popen(
            list(argv),
            cwd=cwd,
            env={**env, TAG_VARIABLE: tag},
            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            stdout=out,
            stderr=err if stderr is not None else subprocess.STDOUT,
            start_new_session=True,
        )
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
    deadline = time.monotonic() + grace
    while group_members(pgid) and time.monotonic() < deadline:
        time.sleep(0.01)
    if (tag := _TAGS.pop(proc.pid, None)) is not None:
        _kill_escaped(tag)


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
) -> CommandResult:
    argv = to_argv(command)
    require_program(argv, env, cwd, what)
    shown = command if isinstance(command, str) else shlex.join(command)
    started = time.monotonic()
    proc = start(argv, cwd=cwd, env=env, stdout=log, stderr=stderr_log, stdin=stdin)
    timed_out = False
    try:
        timed_out = not wait_exit(proc, timeout)
    finally:
        # Also on Ctrl-C; and after a normal exit, children it left behind go too.
        stop_group(proc, grace=KILL_GRACE if timed_out else 0.2)
    duration = time.monotonic() - started
    exit_code = None if timed_out else proc.returncode
    if exit_code == 127 and argv[0] == "/bin/sh" and "not found" in tail_of(log):
        raise CommandNotFound(f"{what}: a program in {shown!r} was not found:\n{tail_of(log, 5)}")
    return CommandResult(
        command=shown,
        exit_code=exit_code,
        duration=duration,
        timed_out=timed_out,
        log=log,
        tail=tail_of(log),
    )


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
