"""A small, fully synthetic :class:`FigureData` with the pipeline's table schemas.

Values are drawn so that each figure's problem case is present: one component's impact
is thousands of times the others' (log scales), heads have a role 'none', and the
optional control columns can be added or left out per test.
"""

import itertools

import numpy as np
import pandas as pd

from diffusion_circuits.figures.data import FigureData
from diffusion_circuits.stats.study import StudyInputs
from diffusion_circuits.stats.tables import GROUP_ORDER

DATASETS = ("synthetic", "natural")
TIMESTEPS = (100, 600)
IMAGES = range(4)
HOOKS = ("conv_in", "down.0.resnet.0", "mid.attn.0", "up.0.resnet.0", "conv_out")
ATTENTION_HOOK = "mid.attn.0"
HEADS = 2
COMPONENTS = ("down.0.resnet.0.residual", "mid.attn.0.head.0", "mid.attn.0.head.1",
              "up.2.resnet.1.residual")  # fmt: skip
ZERO_OFFSET = 1e6
CHANCE = 0.3


def _tidy(rng, metrics, extra=None, **ids) -> pd.DataFrame:
    """Every combination of ``ids`` x dataset x timestep x image, one row per metric."""
    index = pd.MultiIndex.from_product(
        [DATASETS, TIMESTEPS, IMAGES, *ids.values(), metrics],
        names=["dataset", "timestep", "image_id", *ids.keys(), "metric"],
    )
    frame = index.to_frame(index=False).assign(seed=0, value=rng.random(len(index)))
    return frame.assign(**(extra or {}))


def _interventions(rng) -> pd.DataFrame:
    component = _tidy(rng, ["impact", "delta_mse"], target=COMPONENTS,
                      method=("mean", "zero")).assign(family="component_ablation")  # fmt: skip
    # One dominant component: a linear scale would show only it.
    component.loc[component["target"] == "up.2.resnet.1", "value"] *= 1e4
    # Zero ablation (secondary) is far larger; it must never be averaged in.
    component.loc[component["method"] == "zero", "value"] += ZERO_OFFSET
    layer = _tidy(rng, ["impact", "delta_mse"], target=GROUP_ORDER).assign(
        family="layer_ablation", method="zero")  # fmt: skip
    # zero-ablating decoder_late leaves a constant output
    layer.loc[layer["target"] == "decoder_late", "value"] *= 1e3
    layer["output_constant"] = layer["target"] == "decoder_late"
    scaling = _tidy(rng, ["impact"], target=GROUP_ORDER, method=("x0", "x2")).assign(
        family="feature_scaling"
    )
    # Scaling a group by 2 can help: negative mean impacts, the axis must cope (symlog).
    scaling.loc[(scaling["target"] == "middle") & (scaling["method"] == "x2"), "value"] -= 1
    frame = pd.concat([component, layer, scaling], ignore_index=True)
    return frame.assign(output_constant=frame["output_constant"].fillna(False).astype(bool))


def _attention_share(rng) -> pd.DataFrame:
    runs = [("attention", "uniform"), ("attention", "branch_zero"), (ATTENTION_HOOK, "uniform"),
            ("up.0.resnet.0", "resnet_zero")]  # fmt: skip
    rows = [
        {"dataset": d, "seed": 0, "image_id": i, "timestep": t, "target": target,
         "method": method, "mse_base": 1.0, "mse_int": 1.0 + rng.random(), "mse_output_zero": 3.0}
        for d in DATASETS for t in TIMESTEPS for i in IMAGES for target, method in runs
    ]  # fmt: skip
    return pd.DataFrame(rows)


def _sample_impact(rng) -> pd.DataFrame:
    runs = [("attention_share", "attention", "uniform"), ("component_ablation",
            "mid.attn.0.head.0", "mean"), ("feature_scaling", "middle", "x2")]  # fmt: skip
    rows = [
        {"dataset": d, "seed": 0, "family": f, "target": t, "method": m, "sample": n,
         "metric": "rms_distance", "value": rng.random()}
        for d in DATASETS for f, t, m in runs for n in range(3)
    ]  # fmt: skip
    return pd.DataFrame(rows)


def _head_roles() -> pd.DataFrame:
    rows = []
    for dataset in DATASETS:
        for head, role in zip(range(HEADS), ("edge", "none"), strict=True):
            synthetic = dataset == "synthetic"
            rows.append({"dataset": dataset, "seed": 0, "hook": ATTENTION_HOOK, "head": head,
                         "role": role, "specialisation": 0.1 * (head + 1),
                         "edge_score": 0.3, "texture_score": 0.1, "role_candidate": "edge",
                         "role_score": 0.3, "null_threshold": 0.2,
                         "p_value": 0.001 if role == "edge" else 0.4,
                         "semantic_score": 0.2 if synthetic else np.nan,
                         "semantic_part": "eyes" if synthetic else None,
                         "semantic_p_value": 0.3 if synthetic else np.nan,
                         "n_images": len(IMAGES), "n_permutations": 999})  # fmt: skip
    return pd.DataFrame(rows)


def _comparisons(rng) -> pd.DataFrame:
    index = pd.MultiIndex.from_product(
        [["entropy", "specialisation", "accuracy"], TIMESTEPS], names=["metric", "timestep"]
    )
    frame = index.to_frame(index=False)
    n = len(frame)
    estimate = rng.normal(0, 0.2, n)
    return frame.assign(p_value=rng.random(n) / 10, p_holm=rng.random(n) / 5,
                        effect_size=rng.normal(0, 1.5, n), estimate=estimate,
                        ci_low=estimate - 0.05, ci_high=estimate + 0.05,
                        ks_stat=rng.random(n), n_a=30, n_b=30)  # fmt: skip


def _tensors(rng, channels: int) -> dict[str, np.ndarray]:
    n, size, grid = 2, 16, 4
    pattern = rng.random((len(TIMESTEPS), n, HEADS, grid * grid, grid * grid))
    return {
        "samples": rng.uniform(-1, 1, (n, channels, size, size)).astype(np.float16),
        "timesteps": np.array(TIMESTEPS[::-1]),
        "states": rng.normal(0, 1, (len(TIMESTEPS), n, channels, size, size)).astype(np.float16),
        "real": rng.integers(0, 255, (n, size, size, 3), dtype=np.uint8),
        f"pattern:{ATTENTION_HOOK}": (pattern / pattern.sum(-1, keepdims=True)).astype(np.float16),
    }


def _robustness(controls: bool) -> pd.DataFrame:
    """Overlaps of all components (0.5-0.7) and of heads only (0.05, must not be drawn)."""
    rows = pd.DataFrame({
        "seed": 0, "comparison": ["across_timesteps", "across_datasets", "across_datasets"],
        "dataset": ["synthetic", None, None], "timestep": [100, 100, 600],
        "timestep_b": [600, np.nan, np.nan], "metric": "top_k_overlap", "value": [0.5, 0.6, 0.7],
    })  # fmt: skip
    frame = pd.concat([rows.assign(component_type="all"),
                       rows.assign(component_type="head", value=0.05)], ignore_index=True)  # fmt: skip
    if controls:
        frame = frame.assign(chance=CHANCE, value_minus_chance=frame["value"] - CHANCE, k=2,
                             n_components=len(COMPONENTS))  # fmt: skip
    return frame


def make_figure_data(controls: bool = True, channels: int = 1) -> FigureData:
    """``controls``: include the optional null/baseline columns and rows."""
    rng = np.random.default_rng(0)
    accuracy_metrics = ["accuracy", "accuracy_identity", "accuracy_gaussian"] if controls else [
        "accuracy"
    ]  # fmt: skip
    flow_extra = {"value_null": 0.05, "value_raw": 0.5} if controls else None
    study = StudyInputs(
        accuracy=_tidy(rng, accuracy_metrics),
        activations=_tidy(
            rng,
            ["feature_complexity", "feature_complexity_scaled", "activation_mean", "accuracy"],
            hook=HOOKS,
        ).assign(layer_group=lambda f: f["hook"].map(dict(zip(HOOKS, GROUP_ORDER, strict=False)))),
        attention=_tidy(
            rng, ["entropy", "specialisation"], hook=(ATTENTION_HOOK,), head=range(HEADS)
        ),  # fmt: skip
        information_flow=_tidy(
            rng,
            ["information_flow_efficiency"],
            flow_extra,
            hook=[f"{a}->{b}" for a, b in itertools.pairwise(HOOKS)],
        ).assign(
            layer_group=lambda f: (
                f["hook"]
                .str.split("->")
                .str[1]
                .map(  # downstream hook
                    dict(zip(HOOKS, GROUP_ORDER, strict=False))
                )
            )
        ),  # fmt: skip
        interventions=_interventions(rng),
        circuit_complexity=_tidy(rng, ["circuit_complexity"], {"component_type": "all"}),
        head_roles=_head_roles(),
    )
    cka_metrics = ["cka", "cka_baseline", "cka_above_baseline"] if controls else ["cka"]
    cka = pd.MultiIndex.from_product([HOOKS, TIMESTEPS, cka_metrics],
                                     names=["hook", "timestep", "metric"]).to_frame(index=False)  # fmt: skip
    cka = cka.assign(seed=0, value=rng.random(len(cka)), n_images=len(IMAGES))
    cross = pd.MultiIndex.from_product([DATASETS, DATASETS], names=["model", "dataset"])
    return FigureData(
        study=study,
        comparisons=_comparisons(rng),
        top_components=pd.DataFrame({"target": COMPONENTS}),
        cross_accuracy=cross.to_frame(index=False).assign(metric="accuracy", value=0.8),
        cka=cka,
        patching=pd.DataFrame(
            {
                "model": DATASETS * 2,
                "target": ("middle",) * 2 + ("decoder_late",) * 2,
                "value": [0.1, 0.2, 0.3, 0.4],
            }
        ),  # fmt: skip
        robustness=_robustness(controls),
        tensors={d: _tensors(rng, channels) for d in DATASETS},
        attention_share=_attention_share(rng),
        sample_impact=_sample_impact(rng),
        seed_swap=pd.DataFrame(
            {
                "dataset": DATASETS,
                "seed_a": 0,
                "seed_b": 1,
                "sample": 0,
                "metric": "rms_distance",
                "value": [0.2, 0.3],
            }
        ),  # fmt: skip
    )
