"""The ``shipyard`` program: signals, the last word on a bug, and the shortest way in.

``shipyard verify`` and ``shipyard hook AGENT`` run at every agent stop and every CI push, so
when their arguments are plain (options this module knows, each value given, nothing else)
they go straight to their body, without importing typer or building its command tree (about
45 ms of each run). Everything else, from ``--help`` to an unknown option or a glued ``-CDIR``,
goes through the typer app in ``cli.py``, which owns every message about bad arguments; so this
module only ever has to recognise good ones. ``tests/test_entry.py`` holds the two to the same
options and the same values.
"""

from __future__ import annotations

import errno
import gc
import os
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

VERIFY_VALUES = {
    "--spec": "spec",
    "--base": "base",
    "--format": "fmt",
    "--junit": "junit",
    "--progress": "progress",
    "--project": "project",
    "-C": "project",
}
"""``shipyard verify``'s options that take a value: option -> parameter of ``cli.verify``."""
VERIFY_FLAGS = {"--json": "as_json", "--no-cache": "no_cache", "--html": "html"}
VERIFY_PATHS = frozenset({"spec", "junit", "progress", "project"})


def plain_verify(args: Sequence[str]) -> dict[str, Any] | None:
    """The parameters of ``cli.verify`` for ``shipyard verify ARGS``, as typer would give them;
    None when anything in ARGS is not plainly one of its options (typer then parses it)."""
    found: dict[str, Any] = {}
    rest = list(args)
    while rest:
        arg = rest.pop(0)
        if arg in VERIFY_FLAGS:
            found[VERIFY_FLAGS[arg]] = True
            continue
        name, eq, value = arg.partition("=")
        if not (eq and name.startswith("--") and name in VERIFY_VALUES):
            if arg not in VERIFY_VALUES or not rest:
                return None
            name, value = arg, rest.pop(0)
        if not value or value.startswith(("-", "=")):
            return None
        param = VERIFY_VALUES[name]
        found[param] = Path(value) if param in VERIFY_PATHS else value
    project = found.setdefault("project", Path("."))
    if project.exists() and not project.is_dir():  # typer says: a directory, not a file
        return None
    for param in (*VERIFY_VALUES.values(), *VERIFY_FLAGS.values()):
        found.setdefault(param, False if param in VERIFY_FLAGS.values() else None)
    return found


def direct(args: Sequence[str]) -> Callable[[], None] | None:
    """The command's body, when ARGS is a plain ``verify`` or ``hook AGENT``; else None."""
    if args[:1] == ["verify"]:
        given = plain_verify(args[1:])
        if given is None:
            return None

        def verify() -> None:
            from shipyard import cli_verify

            cli_verify.run(
                given["project"], given["spec"], given["base"], given["fmt"], given["as_json"],
                given["junit"], given["progress"], use_cache=not given["no_cache"],
                html=given["html"],
            )  # fmt: skip

        return verify
    if args[:1] == ["hook"] and len(args) == 2 and args[1] and not args[1].startswith("-"):

        def hook() -> None:
            from shipyard.hooks.cli import main as hook_main

            hook_main(args[1])

        return hook
    return None


def _stop(signum: int, _frame: object) -> None:
    """Unwind so that every app, test run and browser is stopped on the way out; a second
    signal while that cleanup runs is ignored rather than cutting it short."""
    for sig in STOP_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)
    if signum == signal.SIGINT:
        raise KeyboardInterrupt
    raise SystemExit(128 + signum)


def main() -> None:
    try:
        _main()
    finally:  # the process ends now: spare the interpreter's last garbage collection over
        gc.freeze()  # every object the imports made (a quarter of a second on a busy machine)


def _main() -> None:
    for sig in STOP_SIGNALS:
        signal.signal(sig, _stop)
    try:
        body = direct(sys.argv[1:])
        if body is None:
            from shipyard.cli import app

            app()
        else:
            _as_typer_would(body)
    except KeyboardInterrupt:
        print("shipyard: interrupted", file=sys.stderr)
        sys.exit(130)
    except Exception:  # a bug in Shipyard: never let it read as "checked and failed" (exit 1)
        import traceback

        traceback.print_exc()
        print("shipyard: internal error (a bug in Shipyard, not in your project)", file=sys.stderr)
        sys.exit(3)


def _as_typer_would(body: Callable[[], None]) -> None:
    """Run a command's body with the endings typer gives it: Ctrl-C is exit 130, a reader that
    closed the pipe (``| head``) ends the output quietly."""
    try:
        body()
    except KeyboardInterrupt:
        sys.exit(130)
    except OSError as exc:
        if exc.errno != errno.EPIPE:
            raise
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # nothing more to flush at exit
        sys.exit(1)
    sys.exit(0)
