"""Line plots as SVG, drawn on the server: no script, no outside origin, they print."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

W, H = 420, 220
LEFT, RIGHT, TOP, BOTTOM = 48, 12, 28, 40


@dataclass(frozen=True, kw_only=True)
class Series:
    name: str
    values: tuple[float | None, ...]
    """One per label; None where there is no base."""


def line_plot(
    title: str, labels: Sequence[str], series: Sequence[Series], *, percent: bool = False
) -> Markup:
    """An SVG line chart of the series over the labels (left to right), with axes and a key."""
    points = [v for s in series for v in s.values if v is not None]
    top = 1.0 if percent else max(points, default=1.0) * 1.1 or 1.0
    n = max(len(labels), 1)
    plot_w, plot_h = W - LEFT - RIGHT, H - TOP - BOTTOM

    def x(i: int) -> float:
        return LEFT + (plot_w * (i + 0.5) / n)

    def y(v: float) -> float:
        return TOP + plot_h * (1 - v / top)

    parts = [f'<svg viewBox="0 0 {W} {H}" role="img" aria-label="{escape(title)}">']
    parts.append(f'<text x="{LEFT}" y="16" font-weight="600">{escape(title)}</text>')
    for frac in (0, 0.5, 1):
        gy = TOP + plot_h * (1 - frac)
        label = f"{frac * top:.0%}" if percent else _short(frac * top)
        parts.append(f'<line class="grid" x1="{LEFT}" x2="{W - RIGHT}" y1="{gy}" y2="{gy}"/>')
        parts.append(f'<text x="{LEFT - 6}" y="{gy + 4}" text-anchor="end">{label}</text>')
    parts.append(f'<line class="axis" x1="{LEFT}" x2="{LEFT}" y1="{TOP}" y2="{TOP + plot_h}"/>')
    step = max(1, n // 6)
    for i, label in enumerate(labels):
        if i % step == 0 or i == n - 1:
            parts.append(
                f'<text x="{x(i):.1f}" y="{H - BOTTOM + 16}" text-anchor="middle">'
                f"{escape(label)}</text>"
            )
    for k, s in enumerate(series):
        cls = "" if k == 0 else " b"
        coords = [(x(i), y(v), v) for i, v in enumerate(s.values) if v is not None]
        if len(coords) > 1:
            path = " ".join(f"{px:.1f},{py:.1f}" for px, py, _ in coords)
            parts.append(f'<polyline class="line{cls}" points="{path}"/>')
        for px, py, v in coords:
            shown = f"{v:.0%}" if percent else _short(v)
            parts.append(
                f'<circle class="dot{cls}" cx="{px:.1f}" cy="{py:.1f}" r="3.5">'
                f"<title>{escape(s.name)}: {shown}</title></circle>"
            )
        if len(series) > 1:
            kx = LEFT + 150 * k
            parts.append(f'<circle class="dot{cls}" cx="{kx + 4}" cy="{H - 8}" r="4"/>')
            parts.append(f'<text x="{kx + 12}" y="{H - 4}">{escape(s.name)}</text>')
    if not points:
        parts.append(
            f'<text x="{W / 2}" y="{TOP + plot_h / 2}" text-anchor="middle">no data yet</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def _short(v: float) -> str:
    if v >= 10_000:
        return f"{v / 1000:,.0f}k"
    return f"{v:,.1f}" if v < 10 else f"{v:,.0f}"
