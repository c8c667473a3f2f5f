"""Attack Shipyard as a hostile model (or project) would, through the real CLI with scripted
models, and say for each attack whether it held.

    uv run python scripts/attack.py [NAME ...]      # all attacks, or the named ones

Prints ``attack → held: why`` or ``attack → broke: why`` per attack; exits 1 if any broke.
Attacks are functions ``(tmp: Path) -> Outcome`` registered with ``@attack`` in the
``attacks_*.py`` modules next to this file (``attacklib.py`` has what they share).
"""

from __future__ import annotations

import argparse
import importlib
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from attacklib import ATTACKS, Outcome, broke, name_of  # noqa: E402

MODULES = ("attacks_secrets", "attacks_escape", "attacks_sandbox", "attacks_input")


def load() -> dict:
    for module in MODULES:
        importlib.import_module(module)
    return {name_of(fn): fn for fn in ATTACKS}


def run_one(name: str) -> Outcome:
    fn = load()[name]
    tmp = Path(tempfile.mkdtemp(prefix="attack-"))
    try:
        return fn(tmp)
    except Exception as exc:  # an attack that could not be carried out says so: it is no pass
        return broke(f"the attack itself failed: {type(exc).__name__}: {exc}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> int:
    attacks = load()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", metavar="NAME", help=", ".join(attacks))
    names = parser.parse_args().names or list(attacks)
    if unknown := [n for n in names if n not in attacks]:
        parser.error(f"unknown attack {', '.join(unknown)}; known: {', '.join(attacks)}")
    failed = 0
    for name in names:
        started = time.monotonic()
        outcome = run_one(name)
        word = "held" if outcome.held else "broke"
        failed += not outcome.held
        print(f"{name} → {word}: {outcome.reason} ({time.monotonic() - started:.1f}s)", flush=True)
    print(f"{len(names) - failed} of {len(names)} held")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
