"""Command line: ``python -m pycalc add 2 3`` prints 5."""

from __future__ import annotations

import argparse
import sys

from pycalc import add, divide, subtract

OPERATIONS = {"add": add, "sub": subtract, "div": divide}


def _format(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pycalc", description="A tiny calculator.")
    parser.add_argument("operation", choices=sorted(OPERATIONS), help="what to compute")
    parser.add_argument("a", type=float, help="first operand")
    parser.add_argument("b", type=float, help="second operand")
    args = parser.parse_args(argv)
    try:
        result = OPERATIONS[args.operation](args.a, args.b)
    except ValueError as exc:
        print(f"pycalc: error: {exc}", file=sys.stderr)
        return 1
    print(_format(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
