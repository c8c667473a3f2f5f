"""The delivery metrics of ``shipyard stats`` over time: the runs bucketed by the day or the
ISO week they started in, each bucket summed by :func:`shipyard.stats.from_rows`."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup

from shipyard import stats
from shipyard.store.figures import RunFigures
from shipyard.web.plots import Series, line_plot

DAY = 86_400
BY_DAY_WITHIN = 21 * DAY


@dataclass(frozen=True, kw_only=True)
class Metrics:
    overall: stats.Stats
    labels: tuple[str, ...]
    plots: tuple[tuple[str, Markup], ...]
    """(id, SVG)."""
    by: str


def metrics(rows: Sequence[RunFigures]) -> Metrics:
    overall = stats.from_rows(rows)
    buckets, by = bucketed(rows)
    labels = tuple(buckets)
    per = [stats.from_rows(group) for group in buckets.values()]

    def rate(name: str) -> Series:
        return Series(name=name, values=tuple(getattr(s, name).value for s in per))

    def two(with_: str, without: str) -> list[Series]:
        return [
            Series(name="with knowledge", values=tuple(getattr(s, with_).value for s in per)),
            Series(name="without", values=tuple(getattr(s, without).value for s in per)),
        ]

    plots = (
        ("first-pass-build", line_plot("first-pass build rate", labels,
                                       [rate("first_pass_build_rate")], percent=True)),
        ("required-tests", line_plot("required tests present and passing (first verify)",
                                     labels, [rate("required_tests_first_verify")], percent=True)),
        ("runtime-checks", line_plot("runtime checks passing", labels,
                                     [rate("runtime_checks_passing")], percent=True)),
        ("ui-flows", line_plot("UI flows passing", labels, [rate("ui_flows_passing")],
                               percent=True)),
        ("attempts", line_plot("attempts per shipped run", labels,
                               two("attempts_with_knowledge", "attempts_without_knowledge"))),
        ("tokens", line_plot("tokens per shipped run", labels,
                             two("tokens_with_knowledge", "tokens_without_knowledge"))),
    )  # fmt: skip
    return Metrics(overall=overall, labels=labels, plots=plots, by=by)


def bucketed(rows: Sequence[RunFigures]) -> tuple[dict[str, list[RunFigures]], str]:
    """Rows by the day (when every run started within three weeks) or the ISO week, oldest
    first."""
    if not rows:
        return {}, "week"
    times = [r.created_at for r in rows]
    by = "day" if max(times) - min(times) <= BY_DAY_WITHIN else "week"
    out: dict[str, list[RunFigures]] = {}
    for at, row in sorted(zip(times, rows, strict=True), key=lambda pair: pair[0]):
        local = time.localtime(at)
        key = time.strftime("%m-%d", local) if by == "day" else time.strftime("%G-W%V", local)
        out.setdefault(key, []).append(row)
    return out, by
