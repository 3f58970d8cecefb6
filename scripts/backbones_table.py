"""Write docs/BACKBONES.md: the U-Net and the DiT arm of the study side by side.

Usage:
    python scripts/backbones_table.py --arm unet=ROOT --arm dit=ROOT \
        [--benchmark timings/backbones.json] [--out docs/BACKBONES.md]

Each ROOT is a pipeline checkout after ``dvc repro`` (or ``dvc exp run``) of one arm: its
params.yaml, metrics/, plots/samples/ and reports/ are read, nothing is typed in. The
scale of the comparison (smoke or study) is the runs' own (``report.inputs.run_scale``).
Each arm's sample grids are copied beside the page (docs/backbones/), so the page keeps
them when the run folders are gone. Re-run it on two full-scale runs to replace the
smoke-scale page.
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import statistics
import subprocess
from pathlib import Path

from diffusion_circuits import layout
from diffusion_circuits.io import read_json, write_text
from diffusion_circuits.params import Params, load_params
from diffusion_circuits.report.inputs import network_description, run_scale

GRIDS = Path("docs/backbones")


def _models(params: Params) -> list[tuple[str, int]]:
    return [(dataset, seed) for dataset in layout.DATASETS for seed in params.train.seeds]


def _share(analyze: dict, edit: str, timesteps, field: str = "share") -> str:
    one_step = analyze["attention_share"]["one_step"]
    values = [one_step[f"attention.{edit}.t{t}"][field] for t in timesteps]
    if field == "mse_rise":
        return " / ".join(f"{100 * v:+.1f}%" for v in values)
    return " / ".join(f"{v:+.4f}" for v in values)


def _margins(evaluate: dict, timesteps) -> str:
    margin, ci = evaluate["margin_over_best_baseline"], evaluate["margin_ci_over_images"]
    return " / ".join(
        f"{margin[f't{t}']:+.4f} [{ci[f't{t}'][0]:+.4f}, {ci[f't{t}'][1]:+.4f}]" for t in timesteps
    )


def _samples(samples: dict) -> str:
    if "max_attribute_frequency_error" in samples:
        floor = samples["max_attribute_frequency_error_of_real_draws"]["q95"]
        attributes = f"{samples['max_attribute_frequency_error']:.3f} (real draws: {floor:.3f})"
    else:
        attributes = "- (no attribute labels)"
    return (
        f"{samples['clean_fraction']:.2f} | {samples['precision']:.2f} | {samples['recall']:.2f} "
        f"| {attributes}"
    )


def arm_tables(arms: dict[str, Path], params: dict[str, Params]) -> dict[str, list[str]]:
    """Rows per table (``margin``, ``attention``, ``samples``), one per model of each arm."""
    tables: dict[str, list[str]] = {"margin": [], "attention": [], "samples": []}
    for arm, root in arms.items():
        timesteps = params[arm].probe.timesteps
        metrics = root / layout.METRICS
        for dataset, seed in _models(params[arm]):
            name = layout.model_name(dataset, seed)
            evaluate = read_json(layout.stage_metrics("evaluate", name, metrics))
            analyze = read_json(layout.stage_metrics("analyze", name, metrics))
            samples = read_json(layout.stage_metrics("samples", name, metrics))
            grid = GRIDS / f"{arm}-{name}.png"
            shutil.copyfile(root / layout.sample_grid(dataset, seed), grid)
            beats = "yes" if evaluate["beats_baselines_everywhere_by_ci"] else "no"
            tables["margin"].append(
                f"| {arm} | {name} | {_margins(evaluate, timesteps)} | {beats} |"
            )
            tables["attention"].append(
                f"| {arm} | {name} | {_share(analyze, 'uniform', timesteps, 'mse_rise')} "
                f"| {_share(analyze, 'branch_zero', timesteps, 'mse_rise')} "
                f"| {_share(analyze, 'uniform', timesteps)} |"
            )
            tables["samples"].append(
                f"| {arm} | {name} | {_samples(samples)} | [{grid.name}](backbones/{grid.name}) |"
            )
    return tables


NOT_COMPARABLE = "not comparable"


def _claims(root: Path) -> dict[str, dict[str, str]]:
    with (root / layout.CLAIMS_CSV).open(newline="") as handle:
        return {row["claim_id"]: row for row in csv.DictReader(handle)}


def _cell(row: dict[str, str]) -> str:
    if not row["ours"]:
        return row["verdict"]
    interval = (
        f" [{float(row['ci_low']):.3g}, {float(row['ci_high']):.3g}]" if row["ci_low"] else ""
    )
    return f"{float(row['ours']):.3g}{interval}: {row['verdict']}"


def differing_claims(arms: dict[str, Path]) -> list[str]:
    """Claims both arms can judge (neither "not comparable") with different verdicts."""
    claims = {arm: _claims(root) for arm, root in arms.items()}
    first = next(iter(claims.values()))
    judged = [
        i for i in first
        if all(i in c and not c[i]["verdict"].startswith(NOT_COMPARABLE) for c in claims.values())
    ]  # fmt: skip
    ids = [i for i in judged if len({c[i]["verdict"] for c in claims.values()}) > 1]
    lines = [
        f"{len(ids)} of the {len(judged)} claims both arms judge get different verdicts"
        + (
            " (reports/replication_claims.csv of each run; paper value, then ours [95% CI]: "
            "verdict):"
            if ids
            else "."
        ),
    ]
    if not ids:
        return lines
    lines += [
        "",
        f"| claim | quantity | paper | {' | '.join(arms)} |",
        f"|---|---|---|{'---|' * len(arms)}",
    ]
    for i in ids:
        row = first[i]  # the claim's own columns are the same in every arm
        cells = " | ".join(_cell(c[i]) for c in claims.values())
        lines.append(
            f"| {i} | {row['quantity']} | {row['paper_comparator']} {row['paper_value']} | {cells} |"
        )
    return lines


def _flat(tree: dict, prefix: str = "") -> dict[str, object]:
    flat: dict[str, object] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat |= _flat(value, f"{prefix}{key}.")
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _git(root: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True,
                          check=True).stdout.strip()  # fmt: skip


def provenance(root: Path, params: Params) -> str:
    """Which dvc.lock holds the arm's outputs, and its params' departures from this
    checkout's params.yaml (as `dvc exp run -S` would set them)."""
    if _git(root, "status", "--porcelain", "--", "dvc.lock"):
        code = _git(root, "log", "-1", "--format=%h", "--", ".", ":!params.yaml", ":!dvc.lock")
        run = f"outputs of an uncommitted dvc.lock over the code of {code}"
    else:
        run = f"outputs recorded in the dvc.lock of {_git(root, 'log', '-1', '--format=%h', '--', 'dvc.lock')}"
    ours, theirs = _flat(load_params().model_dump()), _flat(params.model_dump())
    changed = [f"`{k}={theirs[k]}`" for k in theirs if ours.get(k) != theirs[k]]
    return f"{run}; params " + (", ".join(changed) if changed else "as params.yaml")


def time_lines(arms: dict[str, Path], params: dict[str, Params]) -> list[str]:
    """Median wall seconds per model of the stages that run a network, from timings/."""
    stages = {"train": "wall_seconds", "analyze": "seconds"}
    lines = [
        f"| arm | {' | '.join(f'{s} (median s per model)' for s in stages)} | training img/s |",
        f"|---|{'---|' * (len(stages) + 1)}",
    ]
    for arm, root in arms.items():
        names = [layout.model_name(d, s) for d, s in _models(params[arm])]
        read = {
            stage: [read_json(layout.stage_timings(stage, n, root / layout.TIMINGS)) for n in names]
            for stage in stages
        }
        cells = [
            f"{statistics.median([r[key] for r in read[stage]]):.0f}"
            for stage, key in stages.items()
        ]
        rate = statistics.median([r["images_per_second"] for r in read["train"]])
        lines.append(f"| {arm} | {' | '.join(cells)} | {rate:.1f} |")
    return lines


def verdict_table(arms: dict[str, Path]) -> list[str]:
    counts = {arm: read_json(root / layout.stage_metrics("report")) for arm, root in arms.items()}
    verdicts = sorted({v for c in counts.values() for v in c if v != "n_claims"})
    lines = [f"| verdict | {' | '.join(arms)} |", f"|---|{'---|' * len(arms)}"]
    for verdict in ["n_claims", *verdicts]:
        label = "claims in all" if verdict == "n_claims" else verdict
        lines.append(f"| {label} | {' | '.join(str(c.get(verdict, 0)) for c in counts.values())} |")
    return lines


def absent_lines(arms: dict[str, Path], params: dict[str, Params]) -> list[str]:
    lines = []
    for arm, root in arms.items():
        name = layout.model_name(layout.DATASETS[0], params[arm].train.seeds[0])
        analyze = read_json(layout.stage_metrics("analyze", name, root / layout.METRICS))
        absent = analyze.get("absent_for_backbone") or {"(none)": "every quantity exists"}
        lines += [f"- **{arm}**: " + "; ".join(f"`{q}`: {why}" for q, why in absent.items())]
    return lines


def benchmark_lines(path: Path, chosen: Params) -> list[str]:
    bench = json.loads(path.read_text())
    unet = [r["images_per_second"] for r in bench["rows"] if r["backbone"] == "unet"]
    load = bench["load_average_1min"]
    # The benchmark runs one thread: a load average well above it means other work shared
    # the cores while it ran.
    loaded = load > bench["threads"] + 0.5
    lines = [
        f"Measured by `scripts/benchmark_backbones.py` on {bench['machine']} "
        f"({'while other work loaded it' if loaded else 'otherwise idle'}: 1-minute load "
        f"average {load:.1f} at the end): {bench['threads']} thread, batch "
        f"{bench['batch_size']} at {bench['resolution']} px, fp32 forward + backward + AdamW, "
        f"{bench['timed_steps']} timed steps each. "
        + ("Absolute rates are low and noisy for that reason; the " if loaded else "The ")
        + f"U-Net, timed before and after the candidates in the same session ({unet[0]:.1f} "
        f"and {unet[-1]:.1f} img/s), is the yardstick. The study trains in bf16 where the "
        "CPU has it, so the stage times below are the rates that count.",
        "",
        "| candidate | tokens | parameters | img/s | x U-Net (mean of its two runs) |",
        "|---|---|---|---|---|",
    ]
    yardstick = sum(unet) / len(unet)
    for row in bench["rows"]:
        tokens = row.get("tokens", "-")
        lines.append(
            f"| {row['candidate']} | {tokens} | {row['parameters'] / 1e6:.2f}M | "
            f"{row['images_per_second']:.1f} | {row['images_per_second'] / yardstick:.2f} |"
        )
    dit = chosen.model.dit
    pick = next(
        (r for r in bench["rows"]
         if (r.get("depth"), r.get("patch_size")) == (dit.num_layers, dit.patch_size)), None,
    )  # fmt: skip
    if pick is not None:
        lines += ["", f"params.yaml's `model.dit` (depth {dit.num_layers}, patch {dit.patch_size}) "
                  f"trains at {pick['images_per_second'] / yardstick:.2f}x the U-Net's rate with "
                  f"{pick['parameters'] / 1e6:.2f}M parameters."]  # fmt: skip
    return lines


# What a run outside this checkout leaves beside the page: its record and its report.
KEPT = ("dvc.lock", "reports/replication.md")


def keep_foreign_runs(arms: dict[str, Path]) -> list[str]:
    """Copy each other checkout's :data:`KEPT` files to docs/backbones/<arm>/ (its folder
    goes with it); this checkout's own are in the tree already. Returns the page's lines."""
    lines = []
    for arm, root in arms.items():
        if root.resolve() == Path.cwd().resolve():
            continue
        for name in KEPT:
            kept = GRIDS / arm / Path(name).name
            kept.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(root / name, kept)
        links = ", ".join(f"[{Path(n).name}](backbones/{arm}/{Path(n).name})" for n in KEPT)
        lines.append(
            f"The {arm} arm's run record and full report are kept beside this page: {links}."
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--arm", action="append", required=True, help="NAME=ROOT, twice")
    parser.add_argument("--benchmark", default="timings/backbones.json")
    parser.add_argument("--out", default="docs/BACKBONES.md")
    parser.add_argument("--intro", default="docs/backbones/intro.md", help="the page's prose")
    args = parser.parse_args()
    arms = {name: Path(root) for name, root in (a.split("=", 1) for a in args.arm)}
    params = {arm: load_params(root / "params.yaml") for arm, root in arms.items()}
    GRIDS.mkdir(parents=True, exist_ok=True)
    timesteps = " / ".join(f"t={t}" for t in next(iter(params.values())).probe.timesteps)
    tables = arm_tables(arms, params)
    smoke = [arm for arm, p in params.items() if run_scale(p).startswith("SMOKE")]
    scale = (
        f"**Smoke-scale comparison** (arms {', '.join(smoke)} are smoke runs of the tiny "
        "profile): it shows that every stage runs on both backbones; its numbers say nothing "
        "about either backbone's circuits."
        if smoke
        else "Study-scale comparison: both arms are full runs."
    )
    lines = [
        Path(args.intro).read_text().rstrip(),
        "",
        scale,
        "",
        "## Training rate of the candidates",
        "",
        *benchmark_lines(Path(args.benchmark), load_params()),
        "",
        "## The two arms",
        "",
        *[
            f"- **{arm}**: {network_description(p.model)}; {run_scale(p)}; "
            f"{provenance(arms[arm], p)}"
            for arm, p in params.items()
        ],
        "",
        f"Margin: held-out R^2 minus the better no-learning baseline, with its 95% CI over "
        f"images (evaluate stage), at {timesteps}; 'beats both' is the evaluate stage's "
        "`beats_baselines_everywhere_by_ci`.",
        "",
        "| arm | model | margin over best baseline | beats both baselines (CI) |",
        "|---|---|---|---|",
        *tables["margin"],
        "",
        f"Attention's causal weight, one step ahead on the probed images (analyze stage, "
        f"docs/METRICS.md), at {timesteps}: the rise of the noise MSE when every attention "
        "pattern is made uniform or every attention branch removed, and the share of what "
        "the network's output adds to the prediction that goes with uniform patterns.",
        "",
        "| arm | model | MSE rise, uniform patterns | MSE rise, branches removed "
        "| share, uniform patterns |",
        "|---|---|---|---|---|",
        *tables["attention"],
        "",
        "Samples (samples stage, DDIM, EMA weights): clean fraction, precision and recall "
        "in the feature network's space, and the largest attribute-frequency error beside "
        "the 95th percentile of real draws of the same size.",
        "",
        "| arm | model | clean fraction | precision | recall | max attribute error | sample grid |",
        "|---|---|---|---|---|---|---|",
        *tables["samples"],
        "",
        "Stage times of each arm's run (timings/ of its checkout, `make repro` in two lanes): "
        "wall times on the machine that ran the arm, under whatever load it had; they are "
        "not a benchmark (the table above is).",
        "",
        *time_lines(arms, params),
        "",
        "What the backbone does not have (the analyze stage's `absent_for_backbone`; the "
        "report header says the same):",
        "",
        *absent_lines(arms, params),
        "",
        "Verdict counts of the replication report (metrics/report.json):",
        "",
        *verdict_table(arms),
        "",
        *differing_claims(arms),
        "",
        *keep_foreign_runs(arms),
    ]
    write_text("\n".join(lines) + "\n", args.out)


if __name__ == "__main__":
    main()
