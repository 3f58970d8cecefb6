"""A synthetic study (tidy tables shaped like the pipeline's) for the report's tests.

Natural circuit complexity is set below synthetic (the paper says above), natural entropy
above synthetic, and each seed's model gets its own offset, so verdicts can be worked out.
"""

import numpy as np
import pandas as pd
import pytest

from diffusion_circuits.report.context import ReportInputs
from diffusion_circuits.stats.study import StudyInputs, study_statistics

TIMESTEPS = (100, 300, 600, 900)
GROUPS = ("encoder_early", "encoder_middle", "encoder_late", "middle", "decoder_early",
          "decoder_middle", "decoder_late")  # fmt: skip
HEADS = [("mid.attn.0", h) for h in range(4)]
SHIFT = {"synthetic": 0.0, "natural": 1.0}
# head -> label as analysis/roles.py assigns them ("semantic" never is)
ROLES = ("edge", "none", "global", "undetermined")
CKA = {"cka": 0.8, "cka_untrained_synthetic": 0.6, "cka_untrained_natural": 0.65,
       "cka_baseline": 0.65, "cka_above_baseline": 0.15}  # fmt: skip


def _cka_summary(seeds) -> pd.DataFrame:
    """``cka_summary`` rows, scope "all": the seed's value +- 0.01 per seed, image CI +- 0.02."""
    rows = [{"seed": s, "scope": "all", "timestep": -1, "metric": m,
             "value": v + 0.01 * s, "ci_low": v + 0.01 * s - 0.02,
             "ci_high": v + 0.01 * s + 0.02, "n_images": 8}
            for s in seeds for m, v in CKA.items()]  # fmt: skip
    per_t = [{**r, "scope": "timestep", "timestep": 300, "value": 0.0} for r in rows]
    return pd.DataFrame(rows + per_t)


def _robustness(seeds) -> pd.DataFrame:
    """Across-dataset overlap 0.75 (all) and 0.1 (head, must not enter), chance 0.2."""
    return pd.DataFrame([
        {"seed": s, "component_type": kind, "comparison": "across_datasets", "dataset": None,
         "timestep": t, "metric": "top_k_overlap", "value": value + 0.01 * s, "chance": 0.2,
         "value_minus_chance": value + 0.01 * s - 0.2, "k": 5, "n_components": 40,
         "chance_by_type": 0.5}
        for s in seeds for t in TIMESTEPS for kind, value in (("all", 0.75), ("head", 0.1))
    ])  # fmt: skip


def _frame(rng, n_seeds, n_images, extra: dict, value) -> pd.DataFrame:
    keys = {"dataset": list(SHIFT), "seed": range(n_seeds), "image_id": range(n_images),
            "timestep": TIMESTEPS, **extra}  # fmt: skip
    index = pd.MultiIndex.from_product(list(keys.values()), names=list(keys))
    frame = index.to_frame(index=False)
    frame["value"] = value(frame, rng)
    return frame


def make_study(n_seeds: int, n_images: int = 8, seed: int = 0) -> StudyInputs:
    rng = np.random.default_rng(seed)
    offset = lambda f: 0.05 * f["seed"]  # noqa: E731 - each trained model differs a little
    shift = lambda f: f["dataset"].map(SHIFT)  # noqa: E731
    noise = lambda f, r, s=0.01: r.normal(0, s, len(f))  # noqa: E731
    accuracy = _frame(
        rng,
        n_seeds,
        n_images,
        {"metric": ["accuracy"]},
        lambda f, r: 0.9 + 0.01 * offset(f) + noise(f, r),
    )
    activations = _frame(rng, n_seeds, n_images, {"metric": ["feature_complexity",
                         "feature_complexity_scaled"], "hook": ["down.0.resnet.0"]},
                         lambda f, r: 2 + shift(f) + noise(f, r))  # fmt: skip
    activations["layer_group"] = "encoder_early"
    attention = _frame(rng, n_seeds, n_images, {"metric": ["entropy", "specialisation"],
                       "hook": ["mid.attn.0"], "head": range(4)},
                       lambda f, r: np.where(f["metric"] == "entropy", 5 + 0.2 * shift(f), 0.1)
                       + offset(f) + noise(f, r))  # fmt: skip
    flow = _frame(rng, n_seeds, n_images, {"metric": ["information_flow_efficiency"],
                  "hook": ["conv_in->down.0.resnet.0"]}, lambda f, r: 0.1 + noise(f, r))  # fmt: skip
    flow = flow.assign(
        value_raw=flow["value"] + 0.5, value_null=0.5, bins=8, layer_group="encoder_early"
    )  # of the pair's downstream hook
    circuit = _frame(rng, n_seeds, n_images, {"metric": ["circuit_complexity"], "component_type": ["all"]},
                     lambda f, r: 0.05 - 0.002 * shift(f) + 0.001 * offset(f) + noise(f, r, 0.0005))  # fmt: skip
    layer = _frame(rng, n_seeds, n_images, {"family": ["layer_ablation"], "method": ["zero"],
                   "target": GROUPS, "metric": ["impact", "mse_base", "mse_int"]},
                   lambda f, r: f["target"].map(GROUPS.index) * 0.1 + 0.2 + noise(f, r))  # fmt: skip
    # zero-ablating decoder_late leaves a constant output (impact ~ 1 / MSE_base - 1)
    layer["output_constant"] = layer["target"] == "decoder_late"
    layer.loc[layer["output_constant"] & (layer["metric"] == "impact"), "value"] = 50.0
    # mean ablation (primary) is 1e-3 * t / 100 per head; zero ablation (secondary, first
    # images only) is far larger and must never be averaged in
    heads = _frame(rng, n_seeds, n_images, {"family": ["component_ablation"],
                   "method": ["mean", "zero"], "target": [f"{h}.head.{i}" for h, i in HEADS],
                   "metric": ["impact", "delta_mse"]},
                   lambda f, r: np.where(f["method"] == "zero", 1.0, 1e-3 * (f["timestep"] / 100))
                   + noise(f, r, 1e-5))  # fmt: skip
    heads["output_constant"] = False
    roles = pd.DataFrame([
        {"dataset": d, "seed": s, "hook": h, "head": i, "specialisation": 0.3,
         "edge_score": 0.1, "texture_score": 0.05, "role_candidate": "edge",
         "role_score": 0.1, "null_threshold": 0.05 if i < 1 else 0.2,
         "p_value": 0.001 if i < 1 else 0.4, "semantic_score": np.nan if d == "natural" else 0.3,
         "semantic_part": None if d == "natural" else "eyes",
         "semantic_p_value": np.nan if d == "natural" else 0.2, "n_images": n_images,
         "n_permutations": 999, "role": ROLES[i]}
        for d in SHIFT for s in range(n_seeds) for h, i in HEADS
    ])  # fmt: skip
    return StudyInputs(accuracy=accuracy, activations=activations, attention=attention,
                       information_flow=flow, interventions=pd.concat([layer, heads]),
                       circuit_complexity=circuit, head_roles=roles)  # fmt: skip


def make_context(n_seeds: int) -> ReportInputs:
    study = make_study(n_seeds)
    tables, _ = study_statistics(study, n_resamples=200, seed=0, confidence=0.95)
    seeds = range(n_seeds)
    return ReportInputs(
        study=study, inference=tables["inference"],
        cross_summary=pd.DataFrame({"seed": list(seeds) * 2, "value": 0.9}),
        cka=pd.DataFrame({"seed": list(seeds) * 3, "value": 0.8}),
        cka_summary=_cka_summary(seeds), robustness=_robustness(seeds),
        n_images={"synthetic": 2000, "natural": 2000},
        n_distinct={"synthetic": 2000, "natural": 100},
        n_probe={"synthetic": 8, "natural": 8}, n_probe_distinct={"synthetic": 8, "natural": 8},
        attention_heads=[8, 8, 8], attention_width=[256, 256, 256], num_train_timesteps=1000,
        n_parameters=8_600_000, global_threshold=0.05, n_resamples=200,
    )  # fmt: skip


@pytest.fixture(scope="session")
def one_seed() -> ReportInputs:
    return make_context(1)


@pytest.fixture(scope="session")
def three_seeds() -> ReportInputs:
    return make_context(3)
