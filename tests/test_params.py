import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from diffusion_circuits.params import Params, ParamsError, load_params
from diffusion_circuits.profiles import apply_profile, load_profile
from params_helper import params_with, raw_params

ROOT = Path(__file__).resolve().parents[1]


def write(tmp_path, data) -> Path:
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def repo_params() -> dict:
    return yaml.safe_load((ROOT / "params.yaml").read_text())


def test_repo_params_are_valid_and_match_the_paper_architecture():
    params = load_params(ROOT / "params.yaml")
    assert params.scheduler.beta_schedule == "squaredcos_cap_v2"
    assert params.scheduler.num_train_timesteps == 1000
    assert params.model.block_out_channels[-1] // params.model.attention_head_dim == 8


@pytest.mark.parametrize(
    ("patch", "expected"),
    [
        ({"train": {"stpes": 3}}, "unknown key 'train.stpes' (allowed: steps"),
        ({"train": {"steps": -3}}, "train.steps = -3: Input should be greater than or equal to 1"),
        (
            {"runtime": {"device": "tpu"}},
            "runtime.device = 'tpu': Input should be 'auto', 'cpu' or",
        ),
        ({"train": {"device": "cpu"}}, "unknown key 'train.device' (allowed: steps"),
        ({"data": {"colour": "rgb"}}, "natural.source='lfw' is greyscale"),
        ({"probe": {"timesteps": [100, 1000]}}, "probe.timesteps [1000] outside [0, 1000)"),
        ({"natural": {"source": "celeba"}}, "natural.celeba_dir is not set"),
        ({"bogus": {}}, "unknown key 'bogus' (allowed: data, synthetic"),
    ],
)
def test_bad_params_give_one_line_naming_the_key(tmp_path, patch, expected):
    data = repo_params()
    for section, values in patch.items():
        data.setdefault(section, {}).update(values)
    with pytest.raises(ParamsError) as info:
        load_params(write(tmp_path, data))
    message = str(info.value)
    assert expected in message
    assert "\n" not in message


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(ParamsError, match="params file not found"):
        load_params(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("data: [unclosed\n")
    with pytest.raises(ParamsError, match="not valid YAML"):
        load_params(bad)


def test_yaml_syntax_error_names_file_line_and_column(tmp_path):
    bad = tmp_path / "params.yaml"
    # Line 3 is indented one space deeper than its sibling: a mapping value at column 8.
    bad.write_text("train:\n  steps: 3\n   seed: 4\n")
    with pytest.raises(ParamsError) as info:
        load_params(bad)
    assert str(info.value) == (f"{bad}:3:8: not valid YAML: mapping values are not allowed here")


@pytest.mark.parametrize(
    ("head_dim", "heads"),
    [(48, 5), (24, 10), (512, 0)],
)
def test_head_dim_must_divide_the_attention_width(tmp_path, head_dim, heads):
    data = repo_params()
    data["model"]["attention_head_dim"] = head_dim
    with pytest.raises(ParamsError) as info:
        load_params(write(tmp_path, data))
    message = str(info.value)
    assert f"model.attention_head_dim={head_dim}" in message
    assert f"256 channels / {head_dim} is not an integer number of heads" in message
    assert f"(it would give {heads})" in message
    # The section's whole value is not dumped into the line.
    assert "block_out_channels" not in message and "\n" not in message


def test_head_dim_is_checked_only_against_the_blocks_that_have_attention():
    # 64 divides 256 (4 heads) but not 32 or 96: those widths have no attention here.
    model = {"block_out_channels": [32, 96, 256], "attention_head_dim": 64,
             "norm_num_groups": 32}  # fmt: skip
    params = params_with({"model": model})
    assert params.model.attention_widths() == [256, 256]
    attn_down = {**model, "down_block_types": ["DownBlock2D", "AttnDownBlock2D", "DownBlock2D"]}
    with pytest.raises(ValueError, match="96 channels / 64"):
        params_with({"model": attn_down})


def test_stage_with_bad_params_exits_nonzero_with_one_line_and_writes_nothing(tmp_path):
    data = repo_params()
    data["synthetic"]["n_images"] = "many"
    params = write(tmp_path, data)
    out = tmp_path / "out"
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "stages/generate_synthetic.py"),
            "--params",
            str(params),
            "--out",
            str(out),
            "--metrics",
            str(tmp_path / "m.json"),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "synthetic.n_images = 'many'" in lines[0]
    assert not out.exists() and not (tmp_path / "m.json").exists()


def test_tiny_profile_applies_and_validates():
    merged = apply_profile(repo_params(), load_profile("tiny", ROOT / "profiles"))
    params = Params.model_validate(merged)
    assert params.train.steps < 20 and params.synthetic.n_images < 100
    with pytest.raises(ParamsError, match="does not name"):
        apply_profile(repo_params(), {"nosuch.key": 1})
    # subsection keys, as dvc exp run -S writes them: the tiny DiT's depth
    assert params.model.dit.num_layers == 3 and params.model.backbone == "unet"
    with pytest.raises(ParamsError, match="does not name"):
        apply_profile(repo_params(), {"model.nosuch.num_layers": 1})


def test_unquoted_yaml_no_means_the_no_option():
    """`dvc exp run -S` writes `mixed_precision: no` unquoted; PyYAML reads it as False."""
    unquoted = yaml.safe_load("train:\n  mixed_precision: no\nanalyze:\n  mixed_precision: no\n")
    params = params_with(unquoted)
    assert params.train.mixed_precision == "no" and params.analyze.mixed_precision == "no"


@pytest.mark.parametrize(
    ("section", "key"), [("train", "steps"), ("train", "snr_gamma"), ("runtime", "device")]
)
def test_a_key_missing_from_params_yaml_is_an_error_not_an_old_default(tmp_path, section, key):
    data = repo_params()
    del data[section][key]
    with pytest.raises(ParamsError) as info:
        load_params(write(tmp_path, data))
    assert str(info.value) == f"{write(tmp_path, data)}: {section}.{key} is required"


def test_a_missing_section_is_named(tmp_path):
    data = repo_params()
    del data["runtime"]
    with pytest.raises(ParamsError, match=r"params.yaml: runtime is required$"):
        load_params(write(tmp_path, data))


def test_no_field_of_the_schema_has_a_default():
    """params.yaml is the one source of every value (in/out_channels follow data.colour)."""

    def defaults(schema, prefix=""):
        for name, field in schema.model_fields.items():
            if not field.is_required():
                yield f"{prefix}{name}"
            annotation = field.annotation
            if isinstance(annotation, type) and issubclass(annotation, Params.__base__):
                yield from defaults(annotation, f"{prefix}{name}.")

    assert list(defaults(Params)) == []


def test_cuda_without_a_gpu_fails_at_load(tmp_path, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    path = write(tmp_path, raw_params({"runtime": {"device": "cuda"}}))
    with pytest.raises(ParamsError) as info:
        load_params(path)
    assert "runtime.device = 'cuda': no CUDA device is visible to torch" in str(info.value)
    assert "\n" not in str(info.value)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert load_params(path).runtime.device == "cuda"
