"""Peer benchmark of the probe library against nnsight (not a test), as ratios from one run.

On the study's default U-Net (params.yaml's ``model`` section, random weights, eval mode),
batch 8 at 32x32, one thread:

1. Capture: every module output of the U-Net in one forward. Ours: ``Probe(unet,
   adapter=GenericAdapter()).capture(paths)``; nnsight: ``NNsight(copy of unet).trace(...)`` with
   ``.output.save()`` on every submodule, and with ``tracer.cache(modules=...)``. The
   caches are checked ``torch.equal``; median times of interleaved repeats.
2. Patching sweep: each ResNet block and attention layer patched, one at a time, from a
   corrupt input (same timestep), effect = mean change of the per-image MSE to a fixed
   target. Ours: ``probe.record()`` + ``probe.intervene(Patch(...), replay=...)`` and
   ``activation_patching`` (8 components per forward); nnsight: one trace per component
   setting ``module.output = donor``. Effects are checked to agree.
3. Trajectory peak memory: a DDIM loop of S steps capturing every module output at every
   step; ours streamed to disk shards (``probe.stream(..., DiskSink(...))``), nnsight
   keeping each step's ``tracer.cache()`` in memory. Each variant runs in a fresh process
   and reports its peak RSS (the kernel's ``VmHWM``).

Goals (docs/PROBE.md, "Peer benchmark"): every ratio ours / nnsight <= 1.0 for capture
and sweeps; our trajectory peak memory flat in S. nnsight is the ``bench`` extra:

    pip install -e '.[bench]'
    python scripts/peer_bench.py [--quick] [--repeats N] [--steps 5 25]
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BATCH, SIZE, TIMESTEP = 8, 32, 500
INSTALL_HINT = "peer_bench: nnsight is not installed; pip install -e '.[bench]'"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats (a smoke run)")
    parser.add_argument("--repeats", type=int, default=None, help="capture repeats (default 21)")
    parser.add_argument("--sweep-repeats", type=int, default=None, help="sweep repeats (default 5)")
    parser.add_argument(
        "--steps", type=int, nargs="+", default=[5, 25], help="DDIM steps of the trajectories"
    )
    # internal: one trajectory in this process, result as one JSON line on stdout
    parser.add_argument("--worker", choices=["ours", "nnsight"], help=argparse.SUPPRESS)
    parser.add_argument("--worker-steps", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--worker-dir", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.repeats is None:
        args.repeats = 3 if args.quick else 21
    if args.sweep_repeats is None:
        args.sweep_repeats = 1 if args.quick else 5
    return args


# ---- set-up -------------------------------------------------------------------------------
def build_model():
    """The study's default U-Net (random weights), its inputs and its module paths."""
    import torch

    from diffusion_circuits.model.factory import build_unet
    from diffusion_circuits.params import load_params

    torch.set_num_threads(1)
    params = load_params(ROOT / "params.yaml")
    unet = build_unet(params.model, seed=0).eval()
    g = torch.Generator().manual_seed(0)
    shape = (BATCH, params.model.in_channels, SIZE, SIZE)
    inputs = {
        "clean": torch.randn(shape, generator=g),
        "corrupt": torch.randn(shape, generator=g),
        "target": torch.randn(shape, generator=g),
        "t": torch.full((BATCH,), TIMESTEP),
    }
    return params, unet, inputs, module_paths(unet, inputs["clean"], inputs["t"])


def _call_counts(unet, x, t) -> dict[str, int]:
    """Submodule -> times it ran in one forward, keyed in the order each first finishes."""
    import torch

    counts: dict[str, int] = {}

    def count(name):
        return lambda m, a, o: counts.__setitem__(name, counts.get(name, 0) + 1)

    handles = [m.register_forward_hook(count(n)) for n, m in unet.named_modules() if n]
    try:
        with torch.no_grad():
            unet(x, t)
    finally:
        for handle in handles:
            handle.remove()
    return counts


def module_paths(unet, x, t) -> list[str]:
    """Every submodule that runs in a forward, in the order each first finishes."""
    return list(_call_counts(unet, x, t))


def called_once(unet, x, t) -> set[str]:
    return {name for name, n in _call_counts(unet, x, t).items() if n == 1}


def first_tensor(value):
    """A module's output as our probe records it: a tuple's first tensor."""
    return value[0] if isinstance(value, tuple) else value


def rss_mb(field: str = "VmRSS") -> float:
    """This process's resident set (``VmHWM``: its peak) in MB, from /proc/self/status."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def interleaved(fns: dict, repeats: int) -> dict[str, float]:
    """Median seconds of each function, run in turn (order rotated every repeat); the
    callers have run each once already (the agreement checks), which warms them up."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    names = list(fns)
    for r in range(repeats):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            times[name].append(timed(fns[name]))
    return {name: statistics.median(ts) for name, ts in times.items()}


def peer(unet):
    """nnsight's wrapper of a copy of ``unet`` (same weights, same outputs bit for bit).

    A copy because ``NNsight(module)`` installs its controller as the instance
    ``forward`` of every submodule, for good: on the same object our runs and the plain
    forward would pay for it too.
    """
    import copy

    from nnsight import NNsight

    return NNsight(copy.deepcopy(unet))


# ---- 1. capture ---------------------------------------------------------------------------
def bench_capture(unet, model, inputs, paths, repeats: int) -> dict:
    """``model``: nnsight's wrapper of a copy of ``unet`` (see :func:`peer`)."""
    import torch

    from diffusion_circuits.probe import GenericAdapter, Probe

    x, t = inputs["clean"], inputs["t"]
    probe = Probe(unet, adapter=GenericAdapter())
    nn_paths = [f"{model.path}.{p}" for p in paths]

    def plain():
        with torch.no_grad():
            return unet(x, t).sample

    def ours():
        with torch.no_grad(), probe.capture(paths) as cache:
            unet(x, t)
        return cache

    def nnsight_save():
        # .output must be read in the order the modules run: paths is that order
        with torch.no_grad(), model.trace(x, t):
            saved = {}.save()
            for path in paths:
                saved[path] = model.get(path).output.save()
        return saved

    def nnsight_cache():
        with torch.no_grad(), model.trace(x, t) as tracer:
            cache = tracer.cache(modules=nn_paths)
        return cache

    # the same tensors? (.save() reads a module's first call, the cache every call, ours
    # the last: modules called twice, the resnets' shared SiLU, compare with the cache)
    plain()
    a, b, c = ours(), nnsight_save(), nnsight_cache()
    once = called_once(unet, x, t)
    equal_save = [p for p in paths if p in once and torch.equal(a[p], first_tensor(b[p]))]
    equal_cache = []
    for p, q in zip(paths, nn_paths, strict=True):
        visits = c[q].output
        last = visits[-1] if isinstance(visits, list) else visits
        if torch.equal(a[p], first_tensor(last)):
            equal_cache.append(p)
    check = {
        "modules": len(paths),
        "called_once": len(once),
        "equal_save": len(equal_save),
        "equal_cache": len(equal_cache),
    }
    del a, b, c
    times = interleaved(
        {
            "plain": plain,
            "ours": ours,
            "nnsight .save()": nnsight_save,
            "nnsight cache()": nnsight_cache,
        },
        repeats,
    )
    return {"times": times, "check": check}


# ---- 2. patching sweep --------------------------------------------------------------------
def bench_sweep(unet, model, inputs, repeats: int) -> dict:
    import torch

    from diffusion_circuits.probe import Patch, Probe, activation_patching

    x, x_corrupt, target, t = (inputs[k] for k in ("clean", "corrupt", "target", "t"))
    probe = Probe(unet)
    wanted = set(probe.resnets) | set(probe.attentions)
    components = [n for n in probe.hook_points if n in wanted]  # forward order
    paths = {n: probe.module_path(n) for n in components}

    def metric(eps):
        return ((eps - target) ** 2).mean(dim=(1, 2, 3))

    def ours_replay():
        with torch.no_grad():
            _, donor = probe.run_with_cache(x_corrupt, t, names=components)
            with probe.record() as clean:
                base = metric(unet(x, t).sample)
            effects = {}
            for name in components:
                with probe.intervene(Patch(name, donor[name]), replay=clean):
                    effects[name] = float((metric(unet(x, t).sample) - base).mean())
        return effects

    def ours_batched():
        clean, corrupt = {"sample": x, "timestep": t}, {"sample": x_corrupt, "timestep": t}
        return activation_patching(probe, components, clean, corrupt, metric, 8)

    def nnsight_sweep():
        with torch.no_grad():
            with model.trace(x_corrupt, t):
                donor = {}.save()
                for name in components:
                    donor[name] = model.get(paths[name]).output.save()
            with model.trace(x, t):
                base_eps = model.output.sample.save()
            base = metric(base_eps)
            effects = {}
            for name in components:
                with model.trace(x, t):
                    model.get(paths[name]).output = donor[name]
                    eps = model.output.sample.save()
                effects[name] = float((metric(eps) - base).mean())
        return effects

    with torch.no_grad():
        base_mse = float(metric(unet(x, t).sample).mean())
    results = {"replay": ours_replay(), "batched": ours_batched(), "nnsight": nnsight_sweep()}
    reference = results["nnsight"]

    def agreement(effects):
        # effects are differences of float32 MSEs of order base: allow a few float32 ulps
        diffs = [abs(effects[n] - reference[n]) for n in components]
        return {
            "identical": all(effects[n] == reference[n] for n in components),
            "max_abs_diff": max(diffs),
            "allclose": all(
                d <= 1e-6 * base_mse + 1e-5 * abs(reference[n])
                for d, n in zip(diffs, components, strict=True)
            ),
        }

    check = {
        "components": len(components),
        "replay": agreement(results["replay"]),
        "batched": agreement(results["batched"]),
    }
    times = interleaved(
        {
            "ours replay": ours_replay,
            "ours activation_patching": ours_batched,
            "nnsight": nnsight_sweep,
        },
        repeats,
    )
    return {"times": times, "check": check}


# ---- 3. trajectory memory -----------------------------------------------------------------
def trajectory_worker(variant: str, steps: int, folder: str) -> dict:
    """One DDIM trajectory capturing every module output at every step (in this process)."""
    import torch
    from diffusers import DDIMScheduler

    from diffusion_circuits.model.factory import build_scheduler

    params, unet, inputs, paths = build_model()
    scheduler = DDIMScheduler.from_config(build_scheduler(params.scheduler).config)
    scheduler.set_timesteps(steps)
    x = inputs["clean"]
    if variant == "ours":
        from diffusion_circuits.probe import DiskSink, GenericAdapter, Probe

        probe = Probe(unet, adapter=GenericAdapter())
        baseline = rss_mb()
        start = time.perf_counter()
        with torch.no_grad(), probe.stream(paths, DiskSink(folder, shard_mb=64)) as state:
            for t in scheduler.timesteps:
                x = scheduler.step(unet(x, t).sample, t, x).prev_sample
        kept = state.written
        written_mb = sum(f.stat().st_size for f in Path(folder).iterdir()) / 2**20
    else:
        from nnsight import NNsight

        model = NNsight(unet)
        nn_paths = [f"{model.path}.{p}" for p in paths]
        caches = []
        baseline = rss_mb()
        start = time.perf_counter()
        with torch.no_grad():
            for t in scheduler.timesteps:
                with model.trace(x, t) as tracer:
                    cache = tracer.cache(modules=nn_paths)
                    eps = model.output.sample.save()
                caches.append(cache)
                x = scheduler.step(eps, t, x).prev_sample
        kept = sum(len(cache[p]) for cache in caches for p in nn_paths)
        written_mb = 0.0
    return {
        "variant": variant,
        "steps": steps,
        "baseline_mb": baseline,
        "values": kept,
        "written_mb": written_mb,
        "seconds": time.perf_counter() - start,
        "peak_mb": rss_mb("VmHWM"),
    }


def run_worker(variant: str, steps: int) -> dict:
    """The trajectory in a fresh process, which reports its own peak RSS (``VmHWM``).

    Not ``getrusage(RUSAGE_CHILDREN)`` / ``os.wait4``: Linux carries the parent's
    high-water mark through fork (vfork) and exec into the child's ``ru_maxrss``, so every
    child would report at least this process's RSS.
    """
    with tempfile.TemporaryDirectory(prefix="peer_bench_") as folder:
        command = [
            sys.executable,
            str(Path(__file__).resolve()),
            "--worker",
            variant,
            "--worker-steps",
            str(steps),
            "--worker-dir",
            folder,
        ]
        proc = subprocess.run(command, stdout=subprocess.PIPE, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"trajectory worker {variant} S={steps} failed: {proc.returncode}")
        return json.loads(proc.stdout.strip().splitlines()[-1])


def bench_trajectories(steps: list[int]) -> list[dict]:
    return [run_worker(variant, s) for s in steps for variant in ("ours", "nnsight")]


# ---- report -------------------------------------------------------------------------------
def machine() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    return platform.processor() or platform.machine()


def table(capture: dict, sweep: dict, trajectories: list[dict], args) -> str:
    import diffusers
    import nnsight
    import torch

    ms = {k: v * 1000 for k, v in capture["times"].items()}
    check = capture["check"]
    lines = [
        f"Peer benchmark, {datetime.date.today().isoformat()}, {machine()}, "
        f"{os.cpu_count()} CPUs, 1 thread; torch {torch.__version__}, diffusers "
        f"{diffusers.__version__}, nnsight {nnsight.__version__}; study U-Net (params.yaml "
        f"`model`, random weights), batch {BATCH} at {SIZE}x{SIZE}, t={TIMESTEP}.",
        "",
        "| measurement | ours | nnsight | ours / nnsight | goal |",
        "|---|---|---|---|---|",
        f"| plain forward (median of {args.repeats}) | {ms['plain']:.0f} ms | | | |",
        f"| capture, every module output ({check['modules']} modules) vs `.output.save()` "
        f"| {ms['ours']:.0f} ms ({ms['ours'] / ms['plain']:.2f}x plain) "
        f"| {ms['nnsight .save()']:.0f} ms ({ms['nnsight .save()'] / ms['plain']:.2f}x) "
        f"| **{ms['ours'] / ms['nnsight .save()']:.2f}** | <= 1.0 |",
        f"| capture vs `tracer.cache()` | {ms['ours']:.0f} ms "
        f"| {ms['nnsight cache()']:.0f} ms ({ms['nnsight cache()'] / ms['plain']:.2f}x) "
        f"| **{ms['ours'] / ms['nnsight cache()']:.2f}** | <= 1.0 |",
    ]
    sweep_ms = {k: v * 1000 for k, v in sweep["times"].items()}
    sc = sweep["check"]
    for key, label in (
        ("ours replay", "replay"),
        ("ours activation_patching", "batched"),
    ):
        agree = sc[label]
        how = "bit-identical" if agree["identical"] else f"max diff {agree['max_abs_diff']:.1e}"
        lines.append(
            f"| patching sweep, {sc['components']} components, {key.removeprefix('ours ')} "
            f"(median of {args.sweep_repeats}; effects {how}) | {sweep_ms[key]:.0f} ms "
            f"| {sweep_ms['nnsight']:.0f} ms | **{sweep_ms[key] / sweep_ms['nnsight']:.2f}** "
            "| <= 1.0 |"
        )
    by = {(r["variant"], r["steps"]): r for r in trajectories}
    for s in args.steps:
        o, n = by[("ours", s)], by[("nnsight", s)]
        lines.append(
            f"| trajectory peak RSS, {s} DDIM steps, {o['values']} values (ours: "
            f"{o['written_mb']:.0f} MB to disk) | {o['peak_mb']:.0f} MB "
            f"(+{o['peak_mb'] - o['baseline_mb']:.0f}) | {n['peak_mb']:.0f} MB "
            f"(+{n['peak_mb'] - n['baseline_mb']:.0f}) | **{o['peak_mb'] / n['peak_mb']:.2f}** "
            "| flat in steps |"
        )
    lo, hi = min(args.steps), max(args.steps)
    growth = by[("ours", hi)]["peak_mb"] / by[("ours", lo)]["peak_mb"]
    flat = "flat" if growth <= 1.10 else "NOT flat"
    nn_growth = by[("nnsight", hi)]["peak_mb"] / by[("nnsight", lo)]["peak_mb"]
    lines += [
        "",
        f"Captures torch.equal: ours vs `.output.save()` on {check['equal_save']}/"
        f"{check['called_once']} modules called once (a module called twice, a resnet's "
        f"shared SiLU, gives `.save()` its first call, ours its last); ours vs "
        f"`tracer.cache()` (last visit) on {check['equal_cache']}/{check['modules']}.",
        f"Sweep effects agree with nnsight's (allclose): replay {sc['replay']['allclose']}, "
        f"activation_patching {sc['batched']['allclose']}.",
        f"Trajectory peak RSS {lo} -> {hi} steps: ours x{growth:.2f} ({flat}), "
        f"nnsight x{nn_growth:.2f}. In parentheses: growth over the process's RSS before "
        "the loop (imports and model).",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:
        result = trajectory_worker(args.worker, args.worker_steps, args.worker_dir)
        print(json.dumps(result))
        return 0
    if importlib.util.find_spec("nnsight") is None:
        print(INSTALL_HINT, file=sys.stderr)
        return 1
    import warnings

    warnings.filterwarnings("ignore", category=FutureWarning)
    _, unet, inputs, paths = build_model()
    start = time.perf_counter()
    print(f"capture: {len(paths)} modules, {args.repeats} repeats ...", flush=True)
    model = peer(unet)
    capture = bench_capture(unet, model, inputs, paths, args.repeats)
    print(f"sweep: {args.sweep_repeats} repeats ...", flush=True)
    sweep = bench_sweep(unet, model, inputs, args.sweep_repeats)
    print(f"trajectories: steps {args.steps}, one process each ...", flush=True)
    trajectories = bench_trajectories(args.steps)
    print(f"done in {time.perf_counter() - start:.0f} s\n", flush=True)
    print(table(capture, sweep, trajectories, args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
