"""The body of ``shipyard hook AGENT``: exit 0 on every path, only the answer's JSON on stdout."""

from __future__ import annotations

import contextlib
import os
import sys

from shipyard.hooks.protocols import Answer
from shipyard.hooks.run import MAX_STDIN, handle, write


def main(agent: str) -> None:
    real_stdout = sys.stdout
    with contextlib.redirect_stdout(sys.stderr):  # nothing but the answer reaches the agent
        answer = _answer(agent)
    write(agent, answer, real_stdout, sys.stderr)


def _answer(agent: str) -> Answer:
    try:
        data = sys.stdin.buffer.read(MAX_STDIN + 1)
        if len(data) > MAX_STDIN:
            return Answer(warning=f"shipyard hook: the event is over {MAX_STDIN} bytes; unchecked")
        return handle(agent, data, dict(os.environ))
    except Exception as exc:  # a bug in Shipyard must never block an agent, nor loop it
        import traceback

        traceback.print_exc()
        return Answer(
            warning=f"shipyard hook: internal error ({type(exc).__name__}: {exc}); a bug in "
            "Shipyard, not in your project. The stop is allowed unchecked."
        )
