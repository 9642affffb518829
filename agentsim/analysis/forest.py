"""Forest plot of paired effects: one row per arm × effect, point and 95 % interval, a line at 0.

Effects live on different scales (a bias score in [−2, 2], doctor turns in turns), so each effect
gets its own panel with its own x axis, stacked in one figure; rows within a panel are the arms.
The p-value in each row label is the estimate's ``p`` — Holm-corrected when the estimates come
from :func:`agentsim.analysis.compare.compare_arms`.

matplotlib is imported only when a plot is drawn (``agentsim --help`` stays fast), and the figure
is rendered on an explicit Agg canvas rather than through pyplot: the Agg backend needs no
display, and not touching pyplot's global backend leaves a user's notebook session alone.
"""

from __future__ import annotations

import math
from pathlib import Path

from agentsim.analysis.compare import effect_label, split_name
from agentsim.stats.inference import Estimate

FORMATS = ("png", "svg")
ROW_HEIGHT = 0.42  # inches per row, so labels never overlap however many arms there are
PANEL_PADDING = 0.9  # inches per panel for its title and x axis


def _finite(value: float | None) -> bool:
    return value is not None and not math.isnan(value)


def _label(arm: str, estimate: Estimate) -> str:
    """Row label: the arm and its (corrected) p-value, or why there is no point."""
    name = arm or "(all)"
    if not _finite(estimate.value):
        return f"{name}  (no estimate)"
    if estimate.p is None:
        return name
    which = "p_Holm" if "Holm" in estimate.method else "p"
    return f"{name}  {which}={estimate.p:.2g}"


def forest_plot(estimates: dict[str, Estimate], path_stem: Path,
                title: str = "Effect of each arm vs control (95% CI)") -> list[Path]:
    """Draw ``estimates`` (names ``effect[arm]``) as a forest plot and save it as PNG and SVG
    beside ``path_stem`` (``<stem>.png``, ``<stem>.svg``); returns the paths written.

    With no estimates the figure says so, so a caller can always point to the files.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    panels: dict[str, list[tuple[str, Estimate]]] = {}
    for name, estimate in estimates.items():
        effect, arm = split_name(name)
        panels.setdefault(effect, []).append((arm, estimate))

    rows = sum(len(items) for items in panels.values())
    height = max(2.0, rows * ROW_HEIGHT + len(panels) * PANEL_PADDING + 0.6)
    figure = Figure(figsize=(8.0, height), layout="constrained")
    FigureCanvasAgg(figure)
    if not panels:
        axis = figure.add_subplot()
        axis.text(0.5, 0.5, "no paired differences to plot", ha="center", va="center")
        axis.set_axis_off()
    else:
        axes = figure.subplots(len(panels), 1, squeeze=False,
                               gridspec_kw={"height_ratios": [len(v) + 1.2
                                                              for v in panels.values()]})
        hollow = [_panel(axis, effect, items)
                  for axis, (effect, items) in zip(axes[:, 0], panels.items(), strict=True)]
        if any(hollow):
            figure.supxlabel("hollow point: no interval (e.g. a single scenario to resample)",
                             fontsize="small", color="0.35")
    figure.suptitle(title)

    path_stem = Path(path_stem)
    path_stem.parent.mkdir(parents=True, exist_ok=True)
    paths = []
    for fmt in FORMATS:
        # Appending the suffix (rather than with_suffix) keeps a stem that contains a dot intact.
        path = path_stem.parent / f"{path_stem.name}.{fmt}"
        figure.savefig(path, format=fmt, dpi=150)
        paths.append(path)
    return paths


def _panel(axis, effect: str, items: list[tuple[str, Estimate]]) -> bool:
    """One effect: a row per arm (first arm on top), its point, interval and p-value.
    Returns True when a point had no interval (drawn hollow)."""
    positions = list(range(len(items)))[::-1]
    span = [0.0]  # the zero line is always in view
    hollow = False
    for y, (arm, est) in zip(positions, items, strict=True):
        if not _finite(est.value):
            continue
        span.append(est.value)
        if _finite(est.ci_low) and _finite(est.ci_high):
            span += [est.ci_low, est.ci_high]
            axis.errorbar(est.value, y, xerr=[[est.value - est.ci_low], [est.ci_high - est.value]],
                          fmt="o", color="tab:blue", ecolor="tab:blue", capsize=4)
        else:  # no interval (one scenario, bootstrap failed): the point alone, hollow
            axis.plot(est.value, y, "o", markerfacecolor="white", color="tab:blue")
            hollow = True
    axis.axvline(0.0, color="0.4", linestyle="--", linewidth=1)
    axis.set_yticks(positions, [_label(arm, est) for arm, est in items])
    axis.set_ylim(-0.7, len(items) - 0.3)
    low, high = min(span), max(span)
    margin = (high - low) * 0.1 or 0.5  # a degenerate span (all zero) still gets a visible axis
    axis.set_xlim(low - margin, high + margin)
    axis.set_title(effect_label(effect), loc="left", fontsize="medium")
    axis.grid(axis="x", color="0.9")
    return hollow
