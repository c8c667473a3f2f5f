"""Delivery metrics over every run in the ledger: ``shipyard stats``.

Every figure carries its numerator and denominator; a figure with no base (denominator 0) has
the value ``None``. The ledger yields one row of figures per run (``Ledger.run_figures``, the
query in ``store/figures.py``); the figures are summed from those rows in one pass.

- first verify / last verify of a run: the ``verify_id`` of its first / last gate row by rowid;
- first-pass build: the first verify's ``build`` gate passed (no build commands: no checks, so
  passed);
- required tests: ``required`` checks of the first verify's ``tests`` gate, all passed;
- runtime checks and ui flows: checks of the last verify's ``runtime`` gate, by kind;
- attempts and tokens: of shipped runs (``RunState.attempt``; input + output tokens of
  ``usage``; a run whose usage did not all report tokens is left out of the token figures,
  never counted as 0); diagnosis and blocked rates: of finished (shipped or blocked) runs;
- knowledge: entries given to any role per run (``knowledge_uses``, each entry once a run);
  failures that matched a known pitfall (``pitfall`` events over ``failed`` events); and the
  attempts and tokens of shipped runs *with* knowledge (their implementer was given at least
  one entry) and *without*.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from shipyard.store.figures import RunFigures
from shipyard.store.ledger import Ledger

SCHEMA = "shipyard.stats/1"


@dataclass(frozen=True, kw_only=True)
class Figure:
    """numerator / denominator; ``value`` is None when there is no base."""

    numerator: int
    denominator: int

    @property
    def value(self) -> float | None:
        return self.numerator / self.denominator if self.denominator else None

    def to_json(self) -> dict[str, Any]:
        value = self.value
        return {
            "value": None if value is None else round(value, 4),
            "numerator": self.numerator,
            "denominator": self.denominator,
        }


@dataclass(frozen=True, kw_only=True)
class Spread(Figure):
    """A mean over a list (sum / count), with the list's smallest and largest value."""

    min: int | None = None
    max: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {**super().to_json(), "min": self.min, "max": self.max}


@dataclass(frozen=True, kw_only=True)
class RunCounts:
    total: int
    shipped: int
    blocked: int
    paused: int
    running: int

    @property
    def finished(self) -> int:
        return self.shipped + self.blocked

    @property
    def unfinished(self) -> int:
        return self.total - self.finished

    def to_json(self) -> dict[str, Any]:
        return {
            "total": self.total, "shipped": self.shipped, "blocked": self.blocked,
            "unfinished": self.unfinished, "paused": self.paused, "running": self.running,
        }  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class Stats:
    runs: RunCounts
    first_pass_build_rate: Figure
    required_tests_first_verify: Figure
    runtime_checks_passing: Figure
    ui_flows_passing: Figure
    attempts_per_shipped_run: Spread
    diagnosis_rate: Figure
    blocked_rate: Figure
    tokens_per_shipped_run: Figure
    knowledge_entries_per_run: Figure
    pitfalls_matched: Figure
    attempts_with_knowledge: Spread
    attempts_without_knowledge: Spread
    tokens_with_knowledge: Figure
    tokens_without_knowledge: Figure

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"schema": SCHEMA, "runs": self.runs.to_json()}
        for name, figure in self.figures():
            out[name] = figure.to_json()
        return out

    def figures(self) -> Iterable[tuple[str, Figure]]:
        for name in self.__dataclass_fields__:
            if name != "runs":
                yield name, getattr(self, name)


def compute(ledger: Ledger[Any]) -> Stats:
    return from_rows(ledger.run_figures())


def from_rows(rows: Iterable[RunFigures]) -> Stats:
    """The figures of these runs (all of them, or those of one week)."""
    status = {"shipped": 0, "blocked": 0, "paused": 0, "running": 0}
    total = verified = first_build = 0
    req_runs = req_all = rt_total = rt_passed = ui_total = ui_passed = 0
    diagnosed = 0
    attempts: list[int] = []
    tokens = counted = entries = pitfalls = failed = 0
    split: dict[bool, tuple[list[int], list[int]]] = {True: ([], []), False: ([], [])}
    for row in rows:
        entries += row.entries
        pitfalls, failed = pitfalls + row.pitfalls, failed + row.failed
        total += 1
        if row.status in status:
            status[row.status] += 1
        if row.verified:
            verified += 1
            first_build += row.first_build == "passed"
        if row.req_total:
            req_runs += 1
            req_all += row.req_passed == row.req_total
        rt_total, rt_passed = rt_total + row.rt_total, rt_passed + row.rt_passed
        ui_total, ui_passed = ui_total + row.ui_total, ui_passed + row.ui_passed
        if row.status in ("shipped", "blocked"):
            diagnosed += row.diagnosed
        if row.status == "shipped":
            attempts.append(row.attempts)
            side = split[row.with_knowledge]
            side[0].append(row.attempts)
            if row.tokens is not None:  # unknown tokens are left out, not counted as 0
                tokens += row.tokens
                counted += 1
                side[1].append(row.tokens)
    runs = RunCounts(total=total, **status)
    return Stats(
        runs=runs,
        first_pass_build_rate=Figure(numerator=first_build, denominator=verified),
        required_tests_first_verify=Figure(numerator=req_all, denominator=req_runs),
        runtime_checks_passing=Figure(numerator=rt_passed, denominator=rt_total),
        ui_flows_passing=Figure(numerator=ui_passed, denominator=ui_total),
        attempts_per_shipped_run=_spread(attempts),
        diagnosis_rate=Figure(numerator=diagnosed, denominator=runs.finished),
        blocked_rate=Figure(numerator=runs.blocked, denominator=runs.finished),
        tokens_per_shipped_run=Figure(numerator=tokens, denominator=counted),
        knowledge_entries_per_run=Figure(numerator=entries, denominator=total),
        pitfalls_matched=Figure(numerator=pitfalls, denominator=failed),
        attempts_with_knowledge=_spread(split[True][0]),
        attempts_without_knowledge=_spread(split[False][0]),
        tokens_with_knowledge=Figure(
            numerator=sum(split[True][1]), denominator=len(split[True][1])
        ),
        tokens_without_knowledge=Figure(
            numerator=sum(split[False][1]), denominator=len(split[False][1])
        ),
    )


def _spread(values: list[int]) -> Spread:
    return Spread(
        numerator=sum(values), denominator=len(values),
        min=min(values, default=None), max=max(values, default=None),
    )  # fmt: skip
