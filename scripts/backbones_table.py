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
import json
import shutil
from pathlib import Path

from diffusion_circuits import layout
from diffusion_circuits.io import read_json, write_text
from diffusion_circuits.params import Params, load_params
from diffusion_circuits.report.inputs import network_description, run_scale

GRIDS = Path("docs/backbones")


def _models(params: Params) -> list[tuple[str, int]]:
    return [(dataset, seed) for dataset in layout.DATASETS for seed in params.train.seeds]


def _share(analyze: dict, edit: str, timesteps) -> str:
    one_step = analyze["attention_share"]["one_step"]
    return " / ".join(f"{one_step[f'attention.{edit}.t{t}']['share']:+.4f}" for t in timesteps)


def _margins(evaluate: dict, timesteps) -> str:
    margin, ci = evaluate["margin_over_best_baseline"], evaluate["margin_ci_over_images"]
    return " / ".join(
        f"{margin[f't{t}']:+.4f} [{ci[f't{t}'][0]:+.4f}, {ci[f't{t}'][1]:+.4f}]" for t in timesteps
    )


def arm_rows(arm: str, root: Path, params: Params) -> list[str]:
    """One Markdown row per model of the arm."""
    timesteps = params.probe.timesteps
    metrics = root / layout.METRICS
    rows = []
    for dataset, seed in _models(params):
        name = layout.model_name(dataset, seed)
        evaluate = read_json(layout.stage_metrics("evaluate", name, metrics))
        analyze = read_json(layout.stage_metrics("analyze", name, metrics))
        grid = GRIDS / f"{arm}-{name}.png"
        shutil.copyfile(root / layout.sample_grid(dataset, seed), grid)
        rows.append(
            f"| {arm} | {name} | {_margins(evaluate, timesteps)} | "
            f"{_share(analyze, 'uniform', timesteps)} | {_share(analyze, 'branch_zero', timesteps)} "
            f"| [{grid.name}](backbones/{grid.name}) |"
        )
    return rows


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
    lines = [
        f"Measured by `scripts/benchmark_backbones.py` on {bench['machine']} while other work "
        f"loaded it (1-minute load average {bench['load_average_1min']:.1f} at the end): "
        f"{bench['threads']} thread, batch {bench['batch_size']} at {bench['resolution']} px, "
        f"fp32 forward + backward + AdamW, {bench['timed_steps']} timed steps each. Absolute "
        "rates are low and noisy for that reason; the U-Net, timed before and after the "
        f"candidates in the same session ({unet[0]:.1f} and {unet[-1]:.1f} img/s), is the "
        "yardstick.",
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
            f"- **{arm}**: {network_description(p.model)}; {run_scale(p)}"
            for arm, p in params.items()
        ],
        "",
        f"Margin: held-out R^2 minus the better no-learning baseline, with its 95% CI over "
        f"images (evaluate stage), at {timesteps}. Attention share: the fraction of what the "
        "network's output adds to the prediction that goes when every attention pattern is "
        "uniform, or every attention branch removed (analyze stage, docs/METRICS.md).",
        "",
        "| arm | model | margin over best baseline | attention share, uniform patterns "
        "| attention share, branches removed | sample grid |",
        "|---|---|---|---|---|---|",
        *[row for arm, root in arms.items() for row in arm_rows(arm, root, params[arm])],
        "",
        "What the backbone does not have (the analyze stage's `absent_for_backbone`; the "
        "report header says the same):",
        "",
        *absent_lines(arms, params),
        "",
        "Verdict counts of the replication report (metrics/report.json):",
        "",
        *verdict_table(arms),
    ]
    write_text("\n".join(lines) + "\n", args.out)


if __name__ == "__main__":
    main()
