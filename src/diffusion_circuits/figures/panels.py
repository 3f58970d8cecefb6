"""Reusable panels: each draws one kind of plot from a tidy DataFrame onto an Axes."""

from __future__ import annotations

import string
from graphlib import TopologicalSorter

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from diffusion_circuits.layout import DATASETS  # noqa: E402

__all__ = [
    "PALETTE",
    "DATASETS",
    "new_figure",
    "panel_title",
    "log_scale",
    "reference_line",
    "chance_line",
    "line_by_dataset",
    "bars",
    "present_in_order",
    "forward_order",
    "legend_headroom",
    "heatmap",
    "note",
    "mean_ci",
]

PALETTE = {"synthetic": "#1b9e77", "natural": "#d95f02"}
# Fraction of a bar panel's height added above the data for a legend of up to 3 rows.
LEGEND_HEADROOM = 0.35


def new_figure(
    n_panels: int, heading: str, ncols: int = 3, panel_size: tuple[float, float] = (4.2, 3.4)
) -> tuple[plt.Figure, list[plt.Axes]]:
    """A figure of ``n_panels`` lettered panels; give each its text with :func:`panel_title`."""
    nrows = int(np.ceil(n_panels / ncols))
    ncols = min(ncols, n_panels)
    sns.set_theme(style="whitegrid", context="paper")
    width, height = panel_size
    fig, axes = plt.subplots(nrows, ncols, figsize=(width * ncols, height * nrows), squeeze=False)
    for ax in axes.flat[n_panels:]:
        ax.remove()
    fig.suptitle(heading, fontsize=12, fontweight="bold")
    panels = list(axes.flat[:n_panels])
    for letter, ax in zip(string.ascii_lowercase, panels, strict=False):
        ax.panel_letter = f"({letter})"
        ax.set_title(ax.panel_letter, loc="left", fontsize=9, fontweight="bold")
    return fig, panels


def panel_title(ax: plt.Axes, text: str, fontsize: float = 9) -> None:
    """Set a panel's title as ``(x) text`` in one left-aligned string.

    The letter and the text share one title so they can never overlap (a separate
    centred title collides with the letter as soon as it is long).
    """
    letter = getattr(ax, "panel_letter", "")
    bold = rf"$\bf{{{letter}}}$ " if letter else ""
    ax.set_title(f"{bold}{text}", loc="left", fontsize=fontsize)


def log_scale(ax: plt.Axes, values, axis: str = "y") -> str:
    """Put ``axis`` on a log scale; symmetric-log when some values are <= 0.

    Used where one component is orders of magnitude above the others, so that a linear
    axis would show it alone. Returns the scale used, for the axis label.
    """
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    setter = ax.set_yscale if axis == "y" else ax.set_xscale
    if values.size and (values > 0).all():
        setter("log")
        scale = "log"
    else:
        nonzero = np.abs(values[values != 0])
        # The linear band around 0 spans the smallest magnitude present, at least 1e-4.
        threshold = max(float(nonzero.min()), 1e-4) if nonzero.size else 1e-4
        setter("symlog", linthresh=10 ** np.floor(np.log10(threshold)))
        scale = "symlog"
    if axis == "y" and ax.get_legend() is not None:
        legend_headroom(ax)
    return scale


def reference_line(ax: plt.Axes, y: float, label: str, colour: str = "k") -> None:
    """A dashed horizontal control or baseline level, labelled in the legend."""
    ax.axhline(y, color=colour, ls="--", lw=0.9, label=label)


def chance_line(ax: plt.Axes, frame: pd.DataFrame, label: str = "chance (random top-k)") -> None:
    """The mean ``chance`` column of ``frame`` as a reference line, where the table has one."""
    if "chance" in frame.columns and frame["chance"].notna().any():
        reference_line(ax, float(frame["chance"].mean()), label)
        ax.legend(fontsize=7)


def mean_ci(values: pd.Series) -> tuple[float, float, float]:
    """Mean and a normal-approximation 95% CI (display only; tests use the bootstrap)."""
    values = values.dropna()
    mean = float(values.mean())
    half = 1.96 * float(values.std(ddof=1)) / np.sqrt(len(values)) if len(values) > 1 else 0.0
    return mean, mean - half, mean + half


def line_by_dataset(
    ax: plt.Axes,
    frame: pd.DataFrame,
    x: str,
    title: str,
    ylabel: str,
    xlabel: str = "timestep t",
    unit: str = "image_id",
) -> pd.DataFrame:
    """Mean over units with a 95% CI band per dataset; returns the plotted means."""
    per_unit = frame.groupby(["dataset", x, unit], as_index=False)["value"].mean()
    rows = []
    for dataset in DATASETS:
        part = per_unit[per_unit["dataset"] == dataset]
        if part.empty:
            continue
        stats = part.groupby(x)["value"].apply(mean_ci)
        xs = stats.index.to_numpy()
        means = np.array([s[0] for s in stats])
        ax.plot(xs, means, marker="o", color=PALETTE[dataset], label=dataset)
        ax.fill_between(xs, [s[1] for s in stats], [s[2] for s in stats],
                        color=PALETTE[dataset], alpha=0.2)  # fmt: skip
        rows += [(dataset, xv, m) for xv, m in zip(xs, means, strict=True)]
    ax.set(xlabel=xlabel, ylabel=ylabel)
    panel_title(ax, title)
    ax.legend(fontsize=8)
    return pd.DataFrame(rows, columns=["dataset", x, "mean"])


def bars(
    ax: plt.Axes,
    frame: pd.DataFrame,
    x: str,
    title: str,
    ylabel: str,
    hue: str = "dataset",
    order=None,
) -> None:
    """Bar chart of mean value with 95% CI error bars, coloured by dataset.

    Datasets keep one order and colour in every panel. Linear axes get headroom above
    the tallest bar or error bar so that the legend (and a chance line's entry, added
    later) sits over empty space rather than over a bar.
    """
    by_dataset = hue == "dataset"
    sns.barplot(data=frame, x=x, y="value", hue=hue, order=order,
                hue_order=present_in_order(DATASETS, frame[hue]) if by_dataset else None,
                palette=PALETTE if by_dataset else None,
                errorbar=("ci", 95), ax=ax, n_boot=200, seed=0)  # fmt: skip
    ax.set(xlabel="", ylabel=ylabel)
    panel_title(ax, title)
    ax.tick_params(axis="x", rotation=45, labelsize=7)
    if ax.get_legend() is not None:
        legend_headroom(ax)
        ax.legend(fontsize=7, loc="upper right")


def legend_headroom(ax: plt.Axes) -> None:
    """Raise the top of the y-axis so that an upper-right legend sits over empty space.

    Works in the axis's own scale (linear, log or symlog): the data keep the lower part
    of the panel and the legend gets the top ``LEGEND_HEADROOM`` of it.
    """
    ax.autoscale(axis="y")
    scale = ax.yaxis.get_transform()
    bottom, top = scale.transform(np.asarray(ax.get_ylim()))
    raised = scale.inverted().transform(np.array([top + LEGEND_HEADROOM * (top - bottom)]))
    ax.set_ylim(top=float(raised[0]))


def forward_order(hooks, flow_pairs) -> list[str]:
    """``hooks`` in forward order, read off the information-flow pairs ``"a->b"``.

    Each pair joins consecutive hook points, so together they form the forward path
    whatever order their rows are in; hooks off the path follow in first-seen order.
    """
    before: dict[str, set[str]] = {}
    for pair in dict.fromkeys(flow_pairs):
        source, target = pair.split("->")
        before.setdefault(source, set())
        before.setdefault(target, set()).add(source)
    path = list(TopologicalSorter(before).static_order())
    seen = list(dict.fromkeys(hooks))
    return [h for h in path if h in seen] + [h for h in seen if h not in before]


def present_in_order(order, values) -> list[str]:
    """The members of ``order`` that occur in ``values``, in ``order``'s order."""
    present = set(values)
    return [item for item in order if item in present]


def heatmap(ax: plt.Axes, matrix: pd.DataFrame, title: str, label: str, **kwargs) -> None:
    sns.heatmap(matrix, ax=ax, cbar_kws={"label": label}, **kwargs)
    panel_title(ax, title)
    ax.tick_params(labelsize=6)


def note(ax: plt.Axes, text: str) -> None:
    """An explicit 'not available' panel, never an empty or fake one."""
    ax.text(0.5, 0.5, text, ha="center", va="center", wrap=True, fontsize=8,
            transform=ax.transAxes)  # fmt: skip
    ax.set_axis_off()
