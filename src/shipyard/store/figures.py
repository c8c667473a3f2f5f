"""The ledger read for ``shipyard stats``: one query that yields one row of figures per run.

- first verify / last verify of a run: the ``verify_id`` of its first / last gate row by rowid;
- required tests: ``required`` checks of the first verify's ``tests`` gate;
- runtime checks and ui flows: checks of the last verify's ``runtime`` gate, by kind;
- tokens: of the run's usage rows; unknown when any row's tokens were not reported;
- knowledge: entries given to any role (``knowledge_uses``, each entry once a run), and whether
  the implementer was given any; ``pitfall`` and ``failed`` events.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

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
tokens AS (
    SELECT run_id, SUM(input_tokens + output_tokens) AS n,
           MAX(input_tokens IS NULL OR output_tokens IS NULL) AS unreported
    FROM usage GROUP BY run_id
)
SELECT r.status, r.created_at, json_extract(r.state, '$.attempt') AS attempts,
       f.run_id IS NOT NULL AS verified, b.status AS first_build,
       COALESCE(q.total, 0) AS req_total, COALESCE(q.passed, 0) AS req_passed,
       COALESCE(t.rt_total, 0) AS rt_total, COALESCE(t.rt_passed, 0) AS rt_passed,
       COALESCE(t.ui_total, 0) AS ui_total, COALESCE(t.ui_passed, 0) AS ui_passed,
       d.run_id IS NOT NULL AS diagnosed,
       CASE WHEN k.unreported THEN NULL ELSE COALESCE(k.n, 0) END AS tokens,
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
class RunFigures:
    """One run's counts, as :func:`per_run` reads them."""

    status: str
    attempts: int
    verified: bool
    """At least one verify ran."""
    first_build: str | None
    """The status of the first verify's build gate."""
    req_total: int
    req_passed: int
    rt_total: int
    rt_passed: int
    ui_total: int
    ui_passed: int
    diagnosed: bool
    tokens: int | None
    """None when some of the run's usage did not report its tokens."""
    entries: int
    with_knowledge: bool
    """The implementer was given at least one knowledge entry."""
    pitfalls: int
    failed: int
    created_at: float = 0.0
    """When the run started."""


def per_run(conn: sqlite3.Connection) -> list[RunFigures]:
    return [
        RunFigures(
            status=r["status"],
            attempts=int(r["attempts"] or 0),
            verified=bool(r["verified"]),
            first_build=r["first_build"],
            req_total=r["req_total"],
            req_passed=r["req_passed"],
            rt_total=r["rt_total"],
            rt_passed=r["rt_passed"],
            ui_total=r["ui_total"],
            ui_passed=r["ui_passed"],
            diagnosed=bool(r["diagnosed"]),
            tokens=r["tokens"],
            entries=r["entries"],
            with_knowledge=bool(r["with_knowledge"]),
            pitfalls=r["pitfalls"],
            failed=r["failed"],
            created_at=r["created_at"],
        )  # fmt: skip
        for r in conn.execute(_PER_RUN)
    ]
