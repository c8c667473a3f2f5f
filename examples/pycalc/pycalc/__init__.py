"""A tiny calculator: the example project Shipyard verifies with pytest."""

from __future__ import annotations

__all__ = ["add", "divide", "subtract"]


def add(a: float, b: float) -> float:
    """Return a + b."""
    return a + b


def subtract(a: float, b: float) -> float:
    """Return a - b."""
    return a - b


def divide(a: float, b: float) -> float:
    """Return a / b; dividing by zero raises ValueError."""
    if b == 0:
        raise ValueError("cannot divide by zero")
    return a / b
