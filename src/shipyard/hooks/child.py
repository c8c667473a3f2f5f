"""The verify a hook call runs, in its own process group so that the hook's budget can end it
whole: ``python -m shipyard.hooks.child PROJECT BASE EVIDENCE OUT``. Writes the verdict (or the
error) as JSON to OUT; prints nothing the agent reads."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from shipyard.exceptions import ShipyardError


def main(argv: list[str]) -> int:
    project, base, evidence, out = argv
    from shipyard.verify import verify

    try:
        verdict = verify(
            Path(project), base=base or None, evidence=Path(evidence), fail_to_pass="changed"
        )
        doc: dict[str, Any] = {"verdict": verdict.to_json()}
    except ShipyardError as exc:
        doc = {"error": str(exc), "exit_code": exc.exit_code}
    tmp = Path(out + ".tmp")
    tmp.write_text(json.dumps(doc, default=str))
    tmp.replace(out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
