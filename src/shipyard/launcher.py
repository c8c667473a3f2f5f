"""The launcher: the one process between Shipyard and every command it starts.

    python -I -S launcher.py PARENT_PID HEAD_BYTES TAIL_BYTES LC_CTYPE -- COMMAND [ARG...]

Run by :func:`shipyard.process.start` in the command's new process group, with the command's
(scrubbed) environment, so that the parent a command can look at (``/proc/$PPID/environ``) holds
nothing the command may not see. It

* forks the command with ``PR_SET_PDEATHSIG`` = SIGKILL, set in the child before it execs: this
  process is single-threaded, so the signal fires exactly when the launcher dies;
* watches Shipyard (``PARENT_PID``, through a pidfd, which follows the process and not the
  thread that started us) and kills its whole process group the moment Shipyard is gone, even
  by ``kill -9``;
* copies the command's output into the files it was given as stdout and stderr, keeping the
  first HEAD_BYTES and the last TAIL_BYTES of each and saying how much was cut between;
* gives the command its environment as it was given (LC_CTYPE: the caller's value, or ``-``
  for none, since Python's locale coercion may have set it here);
* ignores SIGINT, SIGTERM and SIGHUP (its group is signalled as one: the command gets them and
  decides), writes what it holds and exits with the command's own status.

Standard library only, imported by path with ``-I -S``: it starts in milliseconds.
"""

from __future__ import annotations

import collections
import ctypes
import errno
import os
import select
import signal
import sys

PR_SET_PDEATHSIG = 1
STOPS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
CHUNK = 1 << 20


class Capped:
    """A file descriptor that keeps the head and the tail of what is written to it."""

    def __init__(self, fd: int, head: int, tail: int) -> None:
        self.fd, self.head, self.tail = fd, head, tail
        self.written = 0
        self.ring: collections.deque[bytes] = collections.deque()
        self.held = 0
        self.cut = 0

    def write(self, data: bytes) -> None:
        if self.written < self.head:
            n = min(len(data), self.head - self.written)
            _write_all(self.fd, data[:n])
            self.written += n
            data = data[n:]
        if not data:
            return
        self.ring.append(data)
        self.held += len(data)
        while self.ring and self.held - len(self.ring[0]) >= self.tail:
            self.cut += len(self.ring[0])
            self.held -= len(self.ring.popleft())

    def flush(self) -> None:
        """Write the tail held so far, after a line saying how much was left out before it."""
        data = b"".join(self.ring)
        extra = max(len(data) - self.tail, 0)
        self.cut += extra
        data = data[extra:]
        if self.cut:
            note = (
                f"\n[shipyard: {self.cut} bytes of output cut here; the first {self.head} and "
                f"the last {len(data)} bytes are kept]\n"
            )
            _write_all(self.fd, note.encode())
        _write_all(self.fd, data)
        self.written += len(data)
        self.ring.clear()
        self.held = self.cut = 0


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(fd, view) :]
        except OSError:
            return  # the file is gone or full: the command's output is not worth dying for


def _same_file(a: int, b: int) -> bool:
    sa, sb = os.fstat(a), os.fstat(b)
    return (sa.st_dev, sa.st_ino) == (sb.st_dev, sb.st_ino)


def _child(argv: list[str], out_w: int, err_w: int, launcher: int, ctype: str) -> None:
    """In the forked child: die with the launcher, own output pipes, default signals, exec."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != launcher:  # the launcher died before the line above
            os._exit(137)
        os.dup2(out_w, 1)
        os.dup2(err_w, 2)
        for sig in STOPS:
            signal.signal(sig, signal.SIG_DFL)
        if ctype == "-":
            os.environ.pop("LC_CTYPE", None)
        else:
            os.environ["LC_CTYPE"] = ctype
        os.execvp(argv[0], argv)
    except OSError as exc:
        os.write(2, f"{argv[0]}: {exc.strerror or exc}\n".encode())
        os._exit(127 if exc.errno == errno.ENOENT else 126)


def _drain(fd: int, sink: Capped) -> bool:
    """Read what is there now; False at end of file."""
    try:
        data = os.read(fd, CHUNK)
    except BlockingIOError:
        return True
    if not data:
        return False
    sink.write(data)
    return True


def main(args: list[str]) -> int:
    parent, head, tail = int(args[0]), int(args[1]), int(args[2])
    ctype, argv = args[3], args[5:]
    stopping: list[int] = []
    for sig in STOPS:
        signal.signal(sig, lambda *_: stopping.append(1))
    try:
        watch = os.pidfd_open(parent)
    except OSError:
        return 137
    if os.getppid() != parent:  # Shipyard died before we could watch it
        return 137
    sinks = {1: Capped(1, head, tail)}
    shared = _same_file(1, 2)
    if not shared:
        sinks[2] = Capped(2, head, tail)
    pipes = {fd: os.pipe() for fd in sinks}
    me = os.getpid()
    pid = os.fork()
    if pid == 0:
        _child(argv, pipes[1][1], pipes[2 if not shared else 1][1], me, ctype)
    child = os.pidfd_open(pid)
    readers = {}
    for fd, (r, w) in pipes.items():
        os.close(w)
        os.set_blocking(r, False)
        readers[r] = sinks[fd]
    status = _pump(child, watch, readers, stopping)
    if status is None:  # Shipyard is gone: so is everything started for it
        for sink in sinks.values():
            sink.flush()
        os.killpg(0, signal.SIGKILL)
        return 137
    _, code = os.waitpid(pid, 0)
    for r, sink in readers.items():
        for _ in range(64):  # what is in the pipe now; a background writer cannot hold us
            if not (_drain(r, sink) and select.select([r], [], [], 0)[0]):
                break
        sink.flush()
    return _mirror(code)


def _pump(child: int, watch: int, readers: dict[int, Capped], stopping: list[int]) -> int | None:
    """Copy output until the command exits (its pidfd); None when Shipyard died first."""
    open_readers = dict(readers)
    while True:
        try:
            ready, _, _ = select.select([child, watch, *open_readers], [], [])
        except InterruptedError:
            ready = []
        if stopping:
            stopping.clear()
            for sink in readers.values():
                sink.flush()  # a stop may end in SIGKILL: what is held is written now
        if watch in ready:
            return None
        for r in [r for r in ready if r in open_readers]:
            if not _drain(r, open_readers[r]):
                del open_readers[r]
        if child in ready:
            return 0


def _mirror(status: int) -> int:
    """Exit as the command did: the same code, or killed by the same signal."""
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        import resource

        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        signal.signal(sig, signal.SIG_DFL)
        os.kill(os.getpid(), sig)
        return 128 + sig
    return os.waitstatus_to_exitcode(status)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
