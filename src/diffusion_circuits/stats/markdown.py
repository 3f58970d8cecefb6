"""Tidy tables as GitHub Markdown: mean ± sd pairs, CIs, p-values and unit notes."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

__all__ = ["to_markdown"]

P_COLUMNS = ("p_value", "ks_p_value")


def _is_missing(value) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def _number(value) -> str:
    """4 significant digits; integral values without decimals; NA for missing."""
    if _is_missing(value):
        return "NA"
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, str):
        return value.replace("|", "\\|")
    value = float(value)
    if abs(value) < 1e9 and (value.is_integer() or abs(value) >= 1e4):
        return f"{value:.0f}"  # counts, ranks, timesteps; large values without exponent
    return f"{value:.4g}"


def _p(value) -> str:
    if _is_missing(value):
        return "NA"
    return "<0.001" if value < 0.001 else f"{value:.3f}"


def _mean_sd(mean, sd) -> str:
    """SD to 2 significant digits and the mean to the same decimals (0.1100 ± 0.0080)."""
    if _is_missing(mean) or _is_missing(sd) or not math.isfinite(sd) or sd <= 0:
        return _number(mean)
    decimals = min(max(0, 1 - math.floor(math.log10(sd))), 12)
    return f"{mean:.{decimals}f} ± {sd:.{decimals}f}"


def _pairs(columns, groups) -> list[tuple[str, str, str]]:
    """(mean column, sd column, header) for mean_a/sd_a and x_mean/x_sd pairs."""
    found = []
    for column in columns:
        if column.startswith("mean_") and f"sd_{column[5:]}" in columns:
            suffix = column[5:]
            name = {"a": groups[0], "b": groups[1]}.get(suffix, suffix) if groups else suffix
            found.append((column, f"sd_{suffix}", f"{name} (mean ± sd)"))
        elif column.endswith("_mean") and f"{column[:-5]}_sd" in columns:
            found.append((column, f"{column[:-5]}_sd", f"{column[:-5]} (mean ± sd)"))
    return found


def to_markdown(table: pd.DataFrame, caption: str, note: str | None = None, *, columns=None) -> str:
    """A GitHub pipe table with a bold caption line and notes under it.

    Means and SDs become one "mean ± sd" column (a/b named after ``attrs["groups"]``),
    ``ci_low``/``ci_high`` one "[lo, hi]" column, p-values show 3 decimals or "<0.001",
    other numbers 4 significant digits, booleans yes/no, missing values "NA". A constant
    ``test`` or ``contrast`` column, ``note`` and ``attrs["unit_note"]`` go under the
    table; an all-empty ``note`` column is left out. ``columns`` selects columns first.

    Examples
    --------
    >>> t = pd.DataFrame({"timestep": [100], "mean_a": [0.1104], "sd_a": [0.0081],
    ...     "ci_low": [0.00123], "ci_high": [0.0156], "p_value": [0.0004]})
    >>> print(to_markdown(t, "Table 1", "toy"))
    **Table 1**
    <BLANKLINE>
    | timestep | a (mean ± sd) | 95% CI | p_value |
    |---:|---:|---:|---:|
    | 100 | 0.1104 ± 0.0081 | [0.00123, 0.0156] | <0.001 |
    <BLANKLINE>
    _toy_
    <BLANKLINE>
    """
    shown = (table if columns is None else table[list(columns)]).reset_index(drop=True)
    groups = table.attrs.get("groups")
    footer = [note] if note else []
    for column in ("test", "contrast"):
        if column in shown.columns and shown[column].nunique(dropna=False) == 1:
            footer.append(f"{column}: {shown[column].iloc[0]}")
            shown = shown.drop(columns=column)
    if table.attrs.get("unit_note"):
        footer.append(table.attrs["unit_note"])
    cells: dict[str, list[str]] = {}
    numeric: set[str] = set()
    pairs = {mean: (sd, header) for mean, sd, header in _pairs(list(shown.columns), groups)}
    skip = {sd for sd, _ in pairs.values()} | {"ci_high"}
    level = round(100 * table.attrs.get("confidence", 0.95))
    for column in shown.columns:
        values = shown[column].tolist()
        if column in skip or (column == "note" and not any(map(bool, values))):
            continue
        if column in pairs:
            sd, header = pairs[column]
            cells[header] = [_mean_sd(m, s) for m, s in zip(values, shown[sd], strict=True)]
            numeric.add(header)
        elif column == "ci_low" and "ci_high" in shown.columns:
            header = f"{level}% CI"
            cells[header] = [f"[{_number(lo)}, {_number(hi)}]"
                             for lo, hi in zip(values, shown["ci_high"], strict=True)]  # fmt: skip
            numeric.add(header)
        elif column in P_COLUMNS or column.startswith("p_"):
            cells[column] = [_p(v) for v in values]
            numeric.add(column)
        else:
            cells[column] = [_number(v) for v in values]
            if pd.api.types.is_numeric_dtype(shown[column]) and not pd.api.types.is_bool_dtype(
                shown[column]
            ):
                numeric.add(column)
    headers = list(cells)
    lines = [f"**{caption}**", "", "| " + " | ".join(headers) + " |",
             "|" + "|".join("---:" if h in numeric else "---" for h in headers) + "|"]  # fmt: skip
    lines += ["| " + " | ".join(row) + " |" for row in zip(*cells.values(), strict=True)]
    if footer:
        for line in footer:  # one paragraph each: adjacent lines would run together
            lines += ["", f"_{line}_"]
    return "\n".join(lines) + "\n"
