"""Whole-trajectory streaming, timestep-scheduled interventions, plain hooks and gradients."""

import numpy as np
import pytest
import torch
from diffusers import DDIMPipeline, DDIMScheduler
from unets import assert_clean, inputs, make_unet, processors

from diffusion_circuits.probe import (
    DiskSink,
    HeadAblation,
    MemorySink,
    Patch,
    Probe,
    Scheduled,
    ZeroAblation,
    load_tensors,
    read_manifest,
)

PATTERN = "up.0.attn.0.pattern"


@pytest.fixture(scope="module")
def pipe():
    return DDIMPipeline(unet=make_unet("paper"), scheduler=DDIMScheduler(num_train_timesteps=1000))


def sample(pipe, steps=5):
    generator = torch.Generator().manual_seed(0)
    return pipe(batch_size=2, generator=generator, num_inference_steps=steps, output_type="np")


def test_streaming_a_pipeline_to_disk_keeps_the_samples_and_only_chosen_steps(pipe, tmp_path):
    probe = Probe(pipe.unet)
    before = processors(pipe.unet)
    plain = sample(pipe).images
    chosen = {800, 400}
    memory = MemorySink()
    with probe.stream([PATTERN, "mid"], memory, timesteps=chosen):
        same = sample(pipe).images
    assert np.array_equal(plain, same)
    disk = DiskSink(tmp_path / "run", shard_mb=0.01)  # tiny shards: several files
    per_image = lambda name, x: x.mean(dim=tuple(range(1, x.ndim)))  # noqa: E731
    scalar = lambda name, x: {"mean": x.mean(), "max": x.max()}  # noqa: E731
    with probe.stream(PATTERN, disk, timesteps=chosen) as state:
        sample(pipe)
    with probe.stream("mid", DiskSink(tmp_path / "reduced"), reduce=per_image):
        sample(pipe)
    with probe.stream("mid", DiskSink(tmp_path / "table"), reduce=scalar, timesteps=chosen):
        sample(pipe)
    assert state.step == 4 and state.written == 2
    timesteps, patterns = load_tensors(tmp_path / "run", PATTERN)
    assert timesteps == [800, 400] == memory.timesteps(PATTERN)
    assert np.array_equal(patterns, memory.stacked(PATTERN))
    assert patterns.shape == (2, 2, 8, 16, 16)  # steps, batch, heads, queries, keys
    assert len(read_manifest(tmp_path / "run")["shards"]) == 2
    timesteps, means = load_tensors(tmp_path / "reduced", "mid")
    assert timesteps == [800, 600, 400, 200, 0] and means.shape == (5, 2)
    assert np.allclose(means[[0, 2]], memory.stacked("mid").mean(axis=(2, 3, 4)), atol=1e-6)
    import pyarrow.parquet as pq

    (shard,) = read_manifest(tmp_path / "table")["shards"]
    table = pq.read_table(tmp_path / "table" / shard["file"]).to_pylist()
    assert [r["metric"] for r in table] == ["mean", "max"] * 2
    assert {r["timestep"] for r in table} == chosen and {r["hook"] for r in table} == {"mid"}
    assert_clean(pipe.unet, before)


def test_a_plain_loop_streams_and_an_exception_still_flushes(tmp_path):
    unet = make_unet("paper")
    scheduler = DDIMScheduler(num_train_timesteps=1000)
    scheduler.set_timesteps(4)
    x = torch.randn(1, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    with (
        pytest.raises(RuntimeError, match="stop"),
        torch.no_grad(),
        Probe(unet).stream("mid", DiskSink(tmp_path), timesteps=lambda t: t > 500),
    ):
        for i, t in enumerate(scheduler.timesteps):
            if i == 3:
                raise RuntimeError("stop")
            x = scheduler.step(unet(x, t).sample, t, x).prev_sample
    timesteps, _ = load_tensors(tmp_path, "mid")  # 750 and 500 ran, only 750 is > 500
    assert list(scheduler.timesteps[:3]) == [750, 500, 250] and timesteps == [750]
    assert_clean(unet)


def test_scheduled_interventions_act_only_inside_their_window():
    unet = make_unet("paper")
    probe = Probe(unet)
    x, _ = inputs(batch=2)
    window = Scheduled(HeadAblation("up.0.attn.0", 1), window=(600, 900))
    with torch.no_grad():
        for t, inside in [(500, False), (600, True), (900, True), (950, False)]:
            clean = unet(x, t).sample
            with probe.intervene(window):
                edited = unet(x, t).sample
            with probe.intervene(HeadAblation("up.0.attn.0", 1)):
                always = unet(x, t).sample
            assert torch.equal(edited, always if inside else clean), t
        # per item in a batch of mixed timesteps, and a predicate
        t = torch.tensor([100, 800])
        with probe.intervene(Scheduled(ZeroAblation("mid"), when=lambda t: t > 500)):
            mixed = unet(x, t).sample
        assert torch.equal(mixed[0], unet(x, t).sample[0])
        with probe.intervene(ZeroAblation("mid")):
            assert torch.equal(mixed[1], unet(x, t).sample[1])
    with pytest.raises(ValueError, match="exactly one of"):
        Scheduled(ZeroAblation("mid"))
    assert_clean(unet)


def test_plain_hook_functions_read_edit_and_clean_up():
    unet = make_unet("paper")
    probe = Probe(unet)
    x, t = inputs()
    seen = []

    def read(tensor, hook):
        seen.append((hook.name, hook.timestep.tolist()))

    with torch.no_grad():
        plain = unet(x, t).sample
        out = probe.run_with_hooks(x, t, fwd_hooks=[("mid", read), ("up.*.upsample", read)])
        assert torch.equal(out, plain)
        assert seen == [("mid", t.tolist()), ("up.0.upsample", t.tolist())] + [
            ("up.1.upsample", t.tolist())
        ]
        zeroed = probe.run_with_hooks(x, t, fwd_hooks=[("mid", lambda x, hook: x * 0)])
        with probe.intervene(ZeroAblation("mid")):
            assert torch.equal(zeroed, unet(x, t).sample)
        # the timestep reaches the hook: "keep mid only when t > 500" needs no loop
        keep_late = lambda x, hook: x * (hook.timestep > 500)[:, None, None, None]  # noqa: E731
        late = probe.run_with_hooks(x, t, fwd_hooks=[("mid", keep_late)])  # t = 10, 500, 900
        assert torch.equal(late[2], plain[2]) and torch.equal(late[0], zeroed[0])

    def boom(tensor, hook):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"), torch.no_grad():
        probe.run_with_hooks(x, t, fwd_hooks=[(lambda n: n.endswith(".pattern"), boom)])
    assert_clean(unet)


def test_gradients_through_a_capture_give_attribution_patching():
    unet = make_unet("paper")
    probe = Probe(unet)
    x, t = inputs(batch=2)
    names = ["mid", PATTERN]
    with probe.capture(names, grad=True) as cache:
        eps = unet(x, t).sample
    eps.pow(2).mean().backward()
    assert cache["mid"].grad.shape == cache["mid"].shape and cache["mid"].grad.abs().sum() > 0
    assert cache[PATTERN].grad.abs().sum() > 0
    # first-order estimate of patching `mid` from a corrupted run, checked against the real one
    noise = torch.randn(x.shape, generator=torch.Generator().manual_seed(5))
    _, corrupt = probe.run_with_cache(x + 0.01 * noise, t, names="mid")
    estimate = ((corrupt["mid"] - cache["mid"].detach()) * cache["mid"].grad).sum()
    with torch.no_grad(), probe.intervene(Patch("mid", corrupt["mid"])):
        patched = unet(x, t).sample.pow(2).mean()
    actual = patched - eps.detach().pow(2).mean()
    assert torch.isclose(estimate, actual, rtol=0.2, atol=1e-6)
    unet.zero_grad()
    assert_clean(unet)
