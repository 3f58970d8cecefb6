"""Device resolution shared by training and the analysis stages."""

import pytest
import torch

from diffusion_circuits.io import UserError
from diffusion_circuits.model import device as device_module
from diffusion_circuits.model.device import bf16_pays, resolve_device


def test_auto_is_the_gpu_when_one_is_visible_and_the_cpu_otherwise(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(UserError, match="no CUDA device"):
        resolve_device("cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == torch.device("cuda")
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(UserError, match="auto, cpu or cuda"):
        resolve_device("tpu")


def test_bf16_only_where_it_is_native(monkeypatch):
    monkeypatch.setattr(device_module, "cpu_supports_bf16", lambda: False)
    assert not bf16_pays("bf16", torch.device("cpu"))
    assert bf16_pays("bf16", torch.device("cuda"))
    assert not bf16_pays("no", torch.device("cuda"))
    monkeypatch.setattr(device_module, "cpu_supports_bf16", lambda: True)
    assert bf16_pays("bf16", torch.device("cpu"))


def test_analysis_loads_the_network_onto_runtime_device(monkeypatch, tmp_path):
    """load_trained moves the network to what resolve_device returns for runtime.device."""
    from diffusion_circuits.analysis import model_io

    asked = []

    class Stop(Exception):
        pass

    def fake_resolve(setting):
        asked.append(setting)
        raise Stop

    monkeypatch.setattr(model_io, "resolve_device", fake_resolve)
    monkeypatch.setattr(model_io, "load_checkpoint", lambda *a: (torch.nn.Linear(1, 1), None))
    from params_helper import params_with

    params = params_with({"runtime": {"device": "auto"}})
    with pytest.raises(Stop):
        model_io.load_trained(params, "synthetic", 0, root=tmp_path)
    assert asked == ["auto"]
