"""The verify inside the sandbox of ``[sandbox] kind = "bwrap"``: ``python -m shipyard.sandboxed
REQUEST.json`` (written by :func:`shipyard.bwrap.verify`). The verdict goes to the evidence
folder as ``verdict.json``; an error that stopped it, to ``sandbox-error.json``."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from shipyard.exceptions import ShipyardError


def main(request: Path) -> int:
    from shipyard import environment
    from shipyard.config import Config
    from shipyard.spec import load_spec
    from shipyard.verify import verify

    asked = json.loads(request.read_text())
    evidence = Path(asked["evidence"])
    try:
        config = Config.model_validate(asked["config"])
        verify(
            Path(asked["project"]), spec=load_spec(Path(asked["spec"])), config=config,
            base=asked["base"], evidence=evidence,
            environ=environment.scrubbed(os.environ, config),
        )  # fmt: skip
    except ShipyardError as exc:
        error = {"error": str(exc), "exit_code": exc.exit_code}
        (evidence / "sandbox-error.json").write_text(json.dumps(error))
        return exc.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
