"""How a command ends on a ShipyardError: one line on stderr, then the error's exit code.

``shipyard: bad input: …`` for exit 2; otherwise the command's own word for "the machine, not
the code": :data:`CHECKING` for the commands that check (verify, report, serve), :data:`WORKING`
for the ones that work (run, resume, batch, memory).
"""

from __future__ import annotations

import json
import sys
from typing import NoReturn

from shipyard.exceptions import ShipyardError

CHECKING = "could not check"
WORKING = "could not work"


def fail(exc: ShipyardError, unable: str = CHECKING, *, as_json: bool = False) -> NoReturn:
    """Say what went wrong and exit with ``exc.exit_code``; with ``as_json``, first print the
    ``shipyard.verify/1`` error document on stdout (verify's ``--json``)."""
    if as_json:
        doc = {"schema": "shipyard.verify/1", "verdict": "error", "exit_code": exc.exit_code}
        doc["error"] = str(exc)
        print(json.dumps(doc, indent=2))
    kind = "bad input" if exc.exit_code == 2 else unable
    print(f"shipyard: {kind}: {exc}", file=sys.stderr)
    raise SystemExit(exc.exit_code)  # typer passes it on as it is; so does entry.py
