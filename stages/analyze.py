"""Stage analyze@{dataset}-{seed}: interventions, circuit complexity and head roles."""

import time

import numpy as np
import pandas as pd

from diffusion_circuits.analysis.circuits import (
    baseline_agreement,
    circuit_complexity,
    top_components,
)
from diffusion_circuits.analysis.interventions import run_interventions
from diffusion_circuits.analysis.model_io import load_trained, reference_images
from diffusion_circuits.analysis.roles import head_roles
from diffusion_circuits.analysis.sample_impact import attention_share_and_sample_impact
from diffusion_circuits.analysis.sample_quality import load_feature_space
from diffusion_circuits.cli import model_stage_args, stage_entry
from diffusion_circuits.io import write_json, write_npz, write_parquet
from diffusion_circuits.model.device import bf16_pays


@stage_entry
def main() -> None:
    args, params = model_stage_args(__doc__)
    name = args.name
    started = time.perf_counter()
    model = load_trained(params, args.dataset, args.seed)
    bf16 = bf16_pays(params.analyze.mixed_precision, model.unet.device)

    reference = reference_images(
        model.faces, params.analyze.n_reference, model.unet.config.in_channels
    )
    interventions = run_interventions(
        model.unet,
        model.scheduler,
        model.probe_set,
        reference,
        params.probe.timesteps,
        seed=params.probe.seed,
        batch_size=params.probe.batch_size,
        params=params.analyze,
        autocast_bf16=bf16,
    )
    complexity = circuit_complexity(interventions)
    tops = top_components(interventions, params.analyze.top_k)
    agreement = baseline_agreement(interventions)
    attention = pd.read_parquet(f"data/cache/{name}/attention.parquet")
    with np.load(f"data/cache/{name}/saliency.npz") as archive:
        saliency = {key: archive[key] for key in archive.files}
    scores, roles = head_roles(
        saliency,
        model.probe_set.images,
        model.probe_set.masks,
        attention,
        params.analyze.global_threshold,
        alpha=params.analyze.role_alpha,
        n_permutations=params.analyze.null_permutations,
        seed=params.probe.seed,
    )

    generation, share, intact = attention_share_and_sample_impact(
        model.unet,
        model.scheduler,
        model.probe_set,
        reference,
        params,
        load_feature_space(f"data/features/{args.dataset}"),
    )

    out = f"data/analysis/{name}"
    # the intact samples from the common noise: cross_dataset's seed-swap yardstick
    write_npz(f"{out}/share_intact_samples.npz", samples=intact.numpy())
    for table_name, table in {
        **generation,
        "interventions": interventions,
        # All components together (Table 1); per component type in its own table.
        "circuit_complexity": complexity[complexity.component_type == "all"].reset_index(drop=True),
        "circuit_complexity_by_type": complexity[complexity.component_type != "all"].reset_index(
            drop=True
        ),
        "top_components": tops,
        "baseline_agreement": agreement,
        "head_role_scores": scores,
        "head_roles": roles,
    }.items():
        table.insert(0, "dataset", args.dataset)
        table.insert(1, "seed", args.seed)
        write_parquet(table, f"{out}/{table_name}.parquet")

    impacts = interventions[interventions.metric == "impact"]
    layer = impacts[(impacts.family == "layer_ablation") & (impacts.method == "zero")]
    write_json(
        {
            # fp32 unless analyze.mixed_precision is bf16 on a GPU or a CPU with native bf16.
            "intervention_precision": "bf16" if bf16 else "fp32",
            "circuit_complexity": complexity[complexity.component_type == "all"]
            .groupby("timestep")["value"]
            .mean()
            .rename(lambda t: f"t{t}")
            .to_dict(),
            "circuit_complexity_by_type": complexity[complexity.component_type != "all"]
            .groupby(["component_type", "timestep"])["value"]
            .mean()
            .pipe(lambda s: {f"{c}.t{t}": v for (c, t), v in s.items()}),
            "layer_ablation_zero_impact": layer.groupby(["timestep", "target"])["value"]
            .mean()
            .pipe(lambda s: {f"t{t}.{g}": v for (t, g), v in s.items()}),
            "output_constant_runs": int(
                impacts.drop_duplicates(["timestep", "family", "target", "method"])[
                    "output_constant"
                ].sum()
            ),
            "head_roles": roles["role"].value_counts().to_dict(),
            "baseline_rank_agreement": agreement[agreement.component_type == "all"]
            .groupby(["method_a", "method_b"])["value"]
            .mean()
            .pipe(lambda s: {f"{a}|{b}": v for (a, b), v in s.items()}),
            "attention_share": share,
            "attention_perturbation_impact": impacts[impacts.family == "attention_perturbation"]
            .groupby("method")["value"]
            .mean()
            .to_dict(),
        },
        f"metrics/analyze/{name}.json",
    )
    write_json({"seconds": time.perf_counter() - started}, f"timings/analyze/{name}.json")


if __name__ == "__main__":
    main()
