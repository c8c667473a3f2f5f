"""The environment model-written code gets: an allow-list, never the caller's keys.

Where a model's code runs (the ``run`` tool, the gates of ``shipyard run``/``resume``, external
agent CLIs), the environment is built from names, not filtered by guesses:

* the base: ``PATH HOME USER LOGNAME SHELL LANG LC_* TERM TZ TMPDIR``;
* Shipyard's own ``SHIPYARD_*`` variables (the run id, the process tag), unless one looks like
  a credential;
* what the project declares for its commands and app (the names under ``[app] env``);
* what the user names in ``[environment] pass = [...]``, and ``extra`` names a caller adds;

and then every variable a model provider reads (the keys pydantic-ai's providers read, their
``OPENAI_*``-style prefixes, each ``[models.providers.*] api_key_env``) is removed, even when
named. Plain ``shipyard verify`` keeps the caller's environment: a CI job needs its
``DATABASE_URL``.

Shipyard's own process: :func:`hide_from_proc` re-executes ``run``/``resume`` with only the base
variables in its initial environment (what ``/proc/PID/environ`` shows) and hands the rest over
through a memory file, so that neither the launcher a tool sees as its parent nor Shipyard above it
shows a key there. What the same user can still do (read the process's memory with a debugger,
read the user's files) is in ``docs/security.md``; ``[sandbox] kind = "bwrap"`` closes it off.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shipyard.config import Config

BASE = frozenset({"PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "TERM", "TZ", "TMPDIR"})
OWN_PREFIX = "SHIPYARD_"
HANDOVER_VARIABLE = "SHIPYARD_ENVIRONMENT_FD"
"""Names the pipe through which a re-executed Shipyard gets back the variables it hid."""
ARGV_VARIABLE = "SHIPYARD_ARGV_FD"
"""Names the memory file through which a re-executed Shipyard gets back its arguments."""
RESUME = "from shipyard.environment import resume; resume()"
_resumed = False
PROVIDER_PREFIXES = (
    "OPENAI_", "ANTHROPIC_", "GEMINI_", "GOOGLE_", "GROQ_", "MISTRAL_", "AWS_", "AZURE_",
    "COHERE_", "CO_API_", "DEEPSEEK_", "OPENROUTER_", "XAI_", "CEREBRAS_", "FIREWORKS_",
    "TOGETHER_", "HF_", "HUGGINGFACE_", "VERTEX", "LOGFIRE_", "OLLAMA_",
)  # fmt: skip


def _base(name: str) -> bool:
    return name in BASE or name.startswith("LC_")


def _own(name: str) -> bool:
    from shipyard.agents.sandbox import looks_secret

    return name.startswith(OWN_PREFIX) and name != HANDOVER_VARIABLE and not looks_secret(name)


def provider_variables(config: Config | None) -> frozenset[str]:
    """The exact names a configured (or any known) model provider reads its key from."""
    from shipyard.agents.models import KEY_VARS

    names = {var for group in KEY_VARS.values() for var in group}
    if config is not None:
        names |= {p.api_key_env for p in config.models.providers.values() if p.api_key_env}
    return frozenset(names)


def is_provider_variable(name: str, providers: frozenset[str]) -> bool:
    return name in providers or name.upper().startswith(PROVIDER_PREFIXES)


def declared(config: Config | None) -> frozenset[str]:
    """Names the project declares or the user passes: ``[app] env``, ``[environment] pass``."""
    if config is None:
        return frozenset()
    names = set(config.environment.pass_)
    if config.app is not None:
        names |= set(config.app.env)
    return frozenset(names)


def scrubbed(
    environ: Mapping[str, str], config: Config | None, extra: Iterable[str] = ()
) -> dict[str, str]:
    """``environ`` reduced to the allow-list for model-written code (see the module doc)."""
    named = declared(config) | set(extra)
    providers = provider_variables(config)
    return {
        name: value
        for name, value in environ.items()
        if (_base(name) or _own(name) or name in named)
        and not is_provider_variable(name, providers)
    }


# -- Shipyard's own initial environment --------------------------------------------------------


def hide_from_proc(*, command_line: bool = False) -> None:
    """Re-execute this process with only the base variables in its initial environment (what
    ``/proc/PID/environ`` shows), the others handed over through a memory file and put back
    into ``os.environ``; back from the re-execution, take them. With ``command_line``, the
    arguments go through a memory file too, so that ``/proc/PID/cmdline`` names no path given
    to the command (``shipyard bench``: its suite, beside which the hidden checks are). A no-op
    when nothing needs hiding or the interpreter's command line is not known."""
    handed = os.environ.pop(HANDOVER_VARIABLE, None)
    if handed is not None:
        _take_back(int(handed))
        return
    if _resumed:
        return
    hidden = {k: v for k, v in os.environ.items() if not (_base(k) or _own(k))}
    argv = getattr(sys, "orig_argv", None)
    if not (hidden or command_line) or not argv:
        return
    kept = {k: v for k, v in os.environ.items() if k not in hidden}
    if hidden:
        kept[HANDOVER_VARIABLE] = str(_memory_file("shipyard-environment", hidden))
    if command_line:
        kept[ARGV_VARIABLE] = str(_memory_file("shipyard-arguments", sys.argv))
        argv = [sys.executable, "-P", "-c", RESUME]
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, argv, kept)


def _memory_file(name: str, data: object) -> int:
    fd = os.memfd_create(name, 0)
    os.write(fd, json.dumps(data).encode())
    os.lseek(fd, 0, os.SEEK_SET)
    os.set_inheritable(fd, True)
    return fd


def resume() -> None:
    """The start of a Shipyard re-executed by ``hide_from_proc(command_line=True)``: its
    arguments back from the memory file, then the command line as if started with them."""
    global _resumed
    fd = int(os.environ.pop(ARGV_VARIABLE))
    chunks = []
    while chunk := os.read(fd, 65536):
        chunks.append(chunk)
    os.close(fd)
    sys.argv = [str(a) for a in json.loads(b"".join(chunks))]
    _resumed = True
    from shipyard.entry import main

    main()


def undumpable() -> None:
    """``PR_SET_DUMPABLE`` = 0: other processes of the same user can no longer read this
    one's ``/proc/PID/{cwd,environ,mem,fd}`` (its command line stays readable)."""
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE
    except (OSError, AttributeError):
        pass


def handed_over(environ: Mapping[str, str]) -> tuple[dict[str, str], int | None]:
    """For starting a Shipyard that calls :func:`hide_from_proc` first (``shipyard run``):
    ``environ`` reduced to the base variables plus a handover to a memory file holding the
    rest, and that file's descriptor (to pass to the child, then close); ``(environ, None)``
    when nothing needs hiding. Neither the launcher in between nor the child ever shows the
    others in ``/proc/PID/environ``."""
    hidden = {k: v for k, v in environ.items() if not (_base(k) or _own(k))}
    if not hidden:
        return dict(environ), None
    fd = os.memfd_create("shipyard-environment", 0)
    os.write(fd, json.dumps(hidden).encode())
    os.lseek(fd, 0, os.SEEK_SET)
    kept = {k: v for k, v in environ.items() if k not in hidden}
    kept[HANDOVER_VARIABLE] = str(fd)
    return kept, fd


def _take_back(fd: int) -> None:
    chunks = []
    while chunk := os.read(fd, 65536):
        chunks.append(chunk)
    os.close(fd)
    for name, value in json.loads(b"".join(chunks) or b"{}").items():
        os.environ[name] = value
