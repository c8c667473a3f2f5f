"""Delivery metrics over every run in the ledger: ``shipyard stats``.

Every figure carries its numerator and denominator; a figure with no base (denominator 0) has
the value ``None``. The ledger is read with one query that yields one row per run; the figures
are summed from those rows in one pass.

- first verify / last verify of a run: the ``verify_id`` of its first / last gate row by rowid;
- first-pass build: the first verify's ``build`` gate passed (no build commands: no checks, so
  passed);
- required tests: ``required`` checks of the first verify's ``tests`` gate, all passed;
- runtime checks and ui flows: checks of the last verify's ``runtime`` gate, by kind;
- attempts and tokens: of shipped runs (``RunState.attempt``; input + output tokens of
  ``usage``); diagnosis and blocked rates: of finished (shipped or blocked) runs;
- knowledge: entries given to any role per run (``knowledge_uses``, each entry once a run);
  failures that matched a known pitfall (``pitfall`` events over ``failed`` events); and the
  attempts and tokens of shipped runs *with* knowledge (their implementer was given at least
  one entry) and *without*.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from shipyard.store.ledger import Ledger

SCHEMA = "shipyard.stats/1"

_PER_RUN = """
WITH first AS (SELECT run_id, verify_id, MIN(rowid) FROM gate_results GROUP BY run_id),
last AS (SELECT run_id, verify_id, MAX(rowid) FROM gate_results GROUP BY run_id),
required AS (
    SELECT g.run_id, COUNT(*) AS total,
           SUM(json_extract(c.value, '$.status') = 'passed') AS passed
    FROM first f  -- CROSS JOIN: look up the first verifies' rows, do not scan every verify
    CROSS JOIN gate_results g
        ON g.run_id = f.run_id AND g.verify_id = f.verify_id AND g.gate = 'tests'
    JOIN json_each(g.data, '$.checks') c
    WHERE json_extract(c.value, '$.kind') = 'required'
    GROUP BY g.run_id
),
last_checks AS (
    SELECT g.run_id, json_extract(c.value, '$.kind') AS kind,
           json_extract(c.value, '$.status') AS status
    FROM last l
    JOIN gate_results g ON g.run_id = l.run_id AND g.verify_id = l.verify_id
        AND g.gate = 'runtime'
    JOIN json_each(g.data, '$.checks') c
),
runtime AS (
    SELECT run_id,
           SUM(kind IN ('http', 'cli', 'app')) AS rt_total,
           SUM(kind IN ('http', 'cli', 'app') AND status = 'passed') AS rt_passed,
           SUM(kind = 'ui') AS ui_total, SUM(kind = 'ui' AND status = 'passed') AS ui_passed
    FROM last_checks GROUP BY run_id
),
diagnosed AS (SELECT DISTINCT run_id FROM events WHERE kind = 'diagnosis'),
known AS (
    SELECT run_id, COUNT(DISTINCT entry_id) AS entries, MAX(role = 'implementer') AS implementer
    FROM knowledge_uses GROUP BY run_id
),
outcomes AS (
    SELECT run_id, SUM(kind = 'pitfall') AS pitfalls, SUM(kind = 'failed') AS failed
    FROM events WHERE kind IN ('pitfall', 'failed') GROUP BY run_id
),
tokens AS (SELECT run_id, SUM(input_tokens + output_tokens) AS n FROM usage GROUP BY run_id)
SELECT r.status, json_extract(r.state, '$.attempt') AS attempts,
       f.run_id IS NOT NULL AS verified, b.status AS first_build,
       COALESCE(q.total, 0) AS req_total, COALESCE(q.passed, 0) AS req_passed,
       COALESCE(t.rt_total, 0) AS rt_total, COALESCE(t.rt_passed, 0) AS rt_passed,
       COALESCE(t.ui_total, 0) AS ui_total, COALESCE(t.ui_passed, 0) AS ui_passed,
       d.run_id IS NOT NULL AS diagnosed, COALESCE(k.n, 0) AS tokens,
       COALESCE(kn.entries, 0) AS entries, COALESCE(kn.implementer, 0) AS with_knowledge,
       COALESCE(o.pitfalls, 0) AS pitfalls, COALESCE(o.failed, 0) AS failed
FROM runs r
LEFT JOIN first f ON f.run_id = r.id
LEFT JOIN gate_results b ON b.run_id = f.run_id AND b.verify_id = f.verify_id AND b.gate = 'build'
LEFT JOIN required q ON q.run_id = r.id
LEFT JOIN runtime t ON t.run_id = r.id
LEFT JOIN diagnosed d ON d.run_id = r.id
LEFT JOIN tokens k ON k.run_id = r.id
LEFT JOIN known kn ON kn.run_id = r.id
LEFT JOIN outcomes o ON o.run_id = r.id
"""


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


def compute(ledger: Ledger) -> Stats:
    status = {"shipped": 0, "blocked": 0, "paused": 0, "running": 0}
    total = verified = first_build = 0
    req_runs = req_all = rt_total = rt_passed = ui_total = ui_passed = 0
    diagnosed = 0
    attempts: list[int] = []
    tokens = entries = pitfalls = failed = 0
    split: dict[bool, tuple[list[int], list[int]]] = {True: ([], []), False: ([], [])}
    for row in ledger.conn.execute(_PER_RUN):
        entries += row["entries"]
        pitfalls, failed = pitfalls + row["pitfalls"], failed + row["failed"]
        total += 1
        if row["status"] in status:
            status[row["status"]] += 1
        if row["verified"]:
            verified += 1
            first_build += row["first_build"] == "passed"
        if row["req_total"]:
            req_runs += 1
            req_all += row["req_passed"] == row["req_total"]
        rt_total, rt_passed = rt_total + row["rt_total"], rt_passed + row["rt_passed"]
        ui_total, ui_passed = ui_total + row["ui_total"], ui_passed + row["ui_passed"]
        if row["status"] in ("shipped", "blocked"):
            diagnosed += bool(row["diagnosed"])
        if row["status"] == "shipped":
            attempts.append(int(row["attempts"] or 0))
            tokens += row["tokens"]
            side = split[bool(row["with_knowledge"])]
            side[0].append(int(row["attempts"] or 0))
            side[1].append(row["tokens"])
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
        tokens_per_shipped_run=Figure(numerator=tokens, denominator=len(attempts)),
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
