"""Plots as inline SVG text: points with intervals, forest panels, who-hears-whom networks and
layered flow graphs. Pure string building (no plotting library, nothing fetched); every label is
escaped, so a persona or arm name cannot inject markup into the page.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from html import escape

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b",
           "#e377c2")
FONT = 'font-family="system-ui, sans-serif" font-size="12"'


@dataclass
class Point:
    """One estimate: value, 95 % interval (None: no interval) and n."""

    value: float | None
    low: float | None = None
    high: float | None = None
    n: int | None = None


@dataclass
class Series:
    """A named series of points, one per category."""

    name: str
    points: dict[str, Point] = field(default_factory=dict)


def _num(value: float) -> str:
    return f"{value:.1f}"


def _fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.3g}"


def _finite(value: float | None) -> bool:
    return value is not None and not math.isnan(value)


def _svg(width: int, height: int, body: list[str], label: str) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
            f'width="{width}" height="{height}" role="img" aria-label="{escape(label)}" {FONT}>'
            + "".join(body) + "</svg>")


def _ticks(low: float, high: float, count: int = 5) -> list[float]:
    """About ``count`` round tick values covering [low, high]."""
    span = high - low
    step = 10 ** math.floor(math.log10(span / count)) if span > 0 else 1.0
    for factor in (1, 2, 2.5, 5, 10):
        if span / (step * factor) <= count:
            step *= factor
            break
    start = math.ceil(low / step) * step
    return [round(start + i * step, 10) for i in range(int((high - start) / step) + 1)]


def _range(values: list[float], reference: float | None) -> tuple[float, float]:
    values = [v for v in values if _finite(v)] + ([reference] if reference is not None else [])
    low, high = (min(values), max(values)) if values else (0.0, 1.0)
    margin = (high - low) * 0.08 or 0.5
    return low - margin, high + margin


def interval_chart(categories: Sequence[str], series: Sequence[Series], *, title: str,
                   y_label: str = "", reference: float | None = 0.0) -> str:
    """Points with 95 % intervals: categories along x, one colour per series (offset within a
    category), a dashed reference line (0, or 1 for shares over parity). A point without an
    interval is drawn hollow."""
    width, height, left, right, top, bottom = 560, 300, 60, 12, 36, 64
    values = [x for s in series for p in s.points.values() for x in (p.value, p.low, p.high)
              if x is not None]
    y_min, y_max = _range(values, reference)

    def y(v: float) -> float:
        return top + (y_max - v) / (y_max - y_min) * (height - top - bottom)

    band = (width - left - right) / max(1, len(categories))
    body = [f'<text x="{left}" y="20" font-weight="bold">{escape(title)}</text>']
    for tick in _ticks(y_min, y_max):
        body.append(f'<line x1="{left}" x2="{width - right}" y1="{_num(y(tick))}" '
                    f'y2="{_num(y(tick))}" stroke="#eee"/><text x="{left - 6}" '
                    f'y="{_num(y(tick) + 4)}" text-anchor="end" fill="#555">{tick:g}</text>')
    if reference is not None:
        body.append(f'<line x1="{left}" x2="{width - right}" y1="{_num(y(reference))}" '
                    f'y2="{_num(y(reference))}" stroke="#888" stroke-dasharray="4 3"/>')
    if y_label:
        body.append(f'<text transform="translate(14 {(height - bottom + top) / 2:.0f}) '
                    f'rotate(-90)" text-anchor="middle" fill="#333">{escape(y_label)}</text>')
    for index, category in enumerate(categories):
        centre = left + band * (index + 0.5)
        body.append(f'<text x="{_num(centre)}" y="{height - bottom + 18}" text-anchor="middle" '
                    f'fill="#333">{escape(_short(category, band))}</text>')
        for number, item in enumerate(series):
            point = item.points.get(category)
            if point is None or not _finite(point.value):
                continue
            spread = band * 0.5 / max(1, len(series))
            x = centre + (number - (len(series) - 1) / 2) * spread
            colour = PALETTE[number % len(PALETTE)]
            tip = (f"{item.name}, {category}: {_fmt(point.value)} "
                   f"[{_fmt(point.low)}, {_fmt(point.high)}], n {point.n}")
            body.append(f"<g><title>{escape(tip)}</title>")
            has_interval = _finite(point.low) and _finite(point.high)
            if has_interval:
                body.append(f'<line x1="{_num(x)}" x2="{_num(x)}" y1="{_num(y(point.low))}" '
                            f'y2="{_num(y(point.high))}" stroke="{colour}" stroke-width="2"/>')
            fill = colour if has_interval else "white"
            body.append(f'<circle cx="{_num(x)}" cy="{_num(y(point.value))}" r="4.5" '
                        f'fill="{fill}" stroke="{colour}" stroke-width="2"/></g>')
    body += _legend([s.name for s in series], left, height - 22) if len(series) > 1 else []
    return _svg(width, height, body, title)


def _short(text: str, room: float) -> str:
    limit = max(4, int(room / 7))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _legend(names: Sequence[str], x: float, y: float) -> list[str]:
    body = []
    for number, name in enumerate(names):
        colour = PALETTE[number % len(PALETTE)]
        body.append(f'<circle cx="{_num(x + 5)}" cy="{_num(y - 4)}" r="4.5" fill="{colour}"/>'
                    f'<text x="{_num(x + 14)}" y="{_num(y)}">{escape(name)}</text>')
        x += 24 + 7 * len(name)
    return body


def forest_chart(panels: Sequence[tuple[str, Sequence[tuple[str, Point, float | None]]]], *,
                 title: str) -> str:
    """A forest plot: one panel per effect (its own x axis), one row per arm or group: point,
    interval, p; the line at 0 is no effect."""
    width, label_width, row, gap = 560, 220, 24, 44
    height = 40 + sum(gap + row * len(rows) for _, rows in panels)
    body = [f'<text x="8" y="20" font-weight="bold">{escape(title)}</text>']
    top = 40
    for effect, rows in panels:
        values = [x for _, p, _ in rows for x in (p.value, p.low, p.high) if x is not None]
        x_min, x_max = _range(values, 0.0)

        def x(v: float, lo: float = x_min, hi: float = x_max) -> float:
            return label_width + (v - lo) / (hi - lo) * (width - label_width - 20)

        body.append(f'<text x="8" y="{top + 14}" font-weight="bold" fill="#333">'
                    f'{escape(effect)}</text>')
        axis_y = top + 22 + row * len(rows)
        body.append(f'<line x1="{_num(x(0.0))}" x2="{_num(x(0.0))}" y1="{top + 20}" '
                    f'y2="{axis_y}" stroke="#888" stroke-dasharray="4 3"/>')
        for tick in _ticks(x_min, x_max, 4):
            body.append(f'<text x="{_num(x(tick))}" y="{axis_y + 14}" text-anchor="middle" '
                        f'fill="#555">{tick:g}</text>')
        for number, (name, point, p) in enumerate(rows):
            cy = top + 32 + row * number
            words = f"{name}" + (f"  p={p:.2g}" if p is not None else "")
            body.append(f'<text x="16" y="{cy + 4}">{escape(_short(words, label_width))}</text>')
            if not _finite(point.value):
                continue
            tip = f"{effect}, {name}: {_fmt(point.value)} [{_fmt(point.low)}, {_fmt(point.high)}]"
            body.append(f"<g><title>{escape(tip)}</title>")
            has_interval = _finite(point.low) and _finite(point.high)
            if has_interval:
                body.append(f'<line x1="{_num(x(point.low))}" x2="{_num(x(point.high))}" '
                            f'y1="{cy}" y2="{cy}" stroke="{PALETTE[0]}" stroke-width="2"/>')
            body.append(f'<circle cx="{_num(x(point.value))}" cy="{cy}" r="4.5" '
                        f'fill="{PALETTE[0] if has_interval else "white"}" '
                        f'stroke="{PALETTE[0]}" stroke-width="2"/></g>')
        top += gap + row * len(rows)
    return _svg(width, height, body, title)


def network_chart(nodes: Sequence[tuple[str, str, str]], edges: Sequence[tuple[str, str]], *,
                  title: str) -> str:
    """Who hears whom: nodes (id, label, group) on a circle, an arrow a → b when b hears a
    (a line with arrows at both ends when they hear each other); groups are colours."""
    size, radius = 250, 84
    centre = size / 2
    groups = list(dict.fromkeys(group for _, _, group in nodes))
    places = {}
    for number, (node, _, _) in enumerate(nodes):
        angle = 2 * math.pi * number / max(1, len(nodes)) - math.pi / 2
        places[node] = (centre + radius * math.cos(angle), 20 + centre + radius * math.sin(angle))
    body = [f'<text x="8" y="18" font-weight="bold">{escape(title)}</text>',
            ('<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
             'markerHeight="7" orient="auto-start-reverse"><path d="M0 0L10 5L0 10z" '
             'fill="#666"/></marker></defs>')]
    pairs = set(edges)
    for a, b in edges:
        if a not in places or b not in places or ((b, a) in pairs and a > b):
            continue
        both = (b, a) in pairs
        (x1, y1), (x2, y2) = _shorten(places[a], places[b], 24)
        start = ' marker-start="url(#arrow)"' if both else ""
        body.append(f'<line x1="{_num(x1)}" y1="{_num(y1)}" x2="{_num(x2)}" y2="{_num(y2)}" '
                    f'stroke="#666" marker-end="url(#arrow)"{start}/>')
    for node, label, group in nodes:
        x, y = places[node]
        colour = PALETTE[groups.index(group) % len(PALETTE)]
        w = 7 * len(label) + 14
        body.append(f'<rect x="{_num(x - w / 2)}" y="{_num(y - 11)}" width="{w}" height="22" '
                    f'rx="11" fill="#fff" stroke="{colour}"/><text x="{_num(x)}" '
                    f'y="{_num(y + 4)}" text-anchor="middle">{escape(label)}</text>')
    if len(groups) > 1:
        body += _legend([g or "—" for g in groups], 8, size + 36)
    return _svg(size, size + 48, body, title)


def _shorten(a: tuple[float, float], b: tuple[float, float],
             by: float) -> tuple[tuple[float, float], tuple[float, float]]:
    """The segment a-b with ``by`` cut from each end (arrows stop at the circles)."""
    dx, dy = b[0] - a[0], b[1] - a[1]
    length = math.hypot(dx, dy) or 1.0
    ux, uy = dx / length, dy / length
    return (a[0] + ux * by, a[1] + uy * by), (b[0] - ux * by, b[1] - uy * by)


def flow_chart(layers: Sequence[Sequence[str]], edges: Sequence[tuple[str, str, bool]], *,
               title: str) -> str:
    """A layered graph (the compiled conversation graph): nodes in rows from the start down,
    edges as lines (dashed when conditional), edges back up or to the node itself curved."""
    width, row, box_h = 560, 64, 26
    height = 40 + row * len(layers)
    places: dict[str, tuple[float, float]] = {}
    for depth, names in enumerate(layers):
        for number, name in enumerate(names):
            places[name] = (width * (number + 1) / (len(names) + 1), 40 + row * depth + box_h / 2)
    body = [f'<text x="8" y="20" font-weight="bold">{escape(title)}</text>',
            ('<defs><marker id="flow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
             'markerHeight="7" orient="auto"><path d="M0 0L10 5L0 10z" fill="#666"/></marker>'
             '</defs>')]
    for a, b, conditional in edges:
        if a not in places or b not in places:
            continue
        (x1, y1), (x2, y2) = places[a], places[b]
        dash = ' stroke-dasharray="5 3"' if conditional else ""
        if a == b:
            path = (f"M{_num(x1 + 40)} {_num(y1 - 6)} C{_num(x1 + 90)} {_num(y1 - 30)} "
                    f"{_num(x1 + 90)} {_num(y1 + 30)} {_num(x1 + 40)} {_num(y1 + 6)}")
        elif y2 <= y1:  # back to an earlier row: curve out to the side
            path = (f"M{_num(x1 - 40)} {_num(y1)} C{_num(x1 - 120)} {_num(y1)} "
                    f"{_num(x2 - 120)} {_num(y2)} {_num(x2 - 40)} {_num(y2)}")
        else:
            # from the bottom of one box to the top of the next
            path = f"M{_num(x1)} {_num(y1 + box_h / 2)} L{_num(x2)} {_num(y2 - box_h / 2)}"
        body.append(f'<path d="{path}" fill="none" stroke="#666"{dash} '
                    'marker-end="url(#flow)"/>')
    for name, (x, y) in places.items():
        label = name.strip("_")
        w = max(60, 8 * len(label) + 16)
        body.append(f'<rect x="{_num(x - w / 2)}" y="{_num(y - box_h / 2)}" width="{w}" '
                    f'height="{box_h}" rx="{13 if name.startswith("__") else 4}" fill="#f2f0ff" '
                    f'stroke="#7a6fd0"/><text x="{_num(x)}" y="{_num(y + 4)}" '
                    f'text-anchor="middle">{escape(label)}</text>')
    return _svg(width, height, body, title)
