"""Reproduce the pipeline with the per-model stages in parallel lanes (``make repro``).

``dvc repro`` runs one stage at a time. On a small CPU one training process with every
thread uses the cores worse than one process per core (two one-thread training processes
ran 1.19x the images per second of one two-thread process on the 2-core reference
machine), and the six models of the default profile are independent. So this:

1. runs ``dvc repro`` for the stages the models read (data, feature networks);
2. runs each stale per-model stage (``train``, ``evaluate``, ``samples``,
   ``cache_activations``, ``analyze`` of every dataset and seed) and everything that reads
   a stage about to run, model by model, ``--lanes`` models at once, each stage with its
   own dvc.yaml command and ``threads / lanes`` threads;
3. records every stage that finished with ``dvc commit`` (as ``dvc repro`` would have);
4. runs ``dvc repro`` for the rest (cross_dataset, stats, figures, report).

The results are those of ``dvc repro`` (thread counts are not a param of any stage; the
same machine gives the same metrics). Usage::

    python scripts/repro_lanes.py [--lanes N] [--dry-run]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import networkx as nx
import yaml
from tqdm import tqdm

# Per-model stage families in the order they run within one model.
PER_MODEL = ("train", "evaluate", "samples", "cache_activations", "analyze")
LOGS = Path("logs/lanes")


def family(stage: str) -> str:
    return stage.split("@", 1)[0]


def plan(graph: nx.DiGraph, stale: set[str]) -> tuple[list[str], dict[str, list[str]]]:
    """``(upstream, chains)``: the stages the models read, and per model the stages to run.

    ``graph`` has an edge from each stage to every stage it depends on (DVC's index
    graph, by name). A per-model stage runs when it is stale or reads, directly or not,
    a per-model stage that runs; ``chains`` maps each model (the matrix item, e.g.
    ``synthetic-0``) to its stages in :data:`PER_MODEL` order.
    """
    per_model = {s for s in graph if family(s) in PER_MODEL and "@" in s}
    upstream = set().union(*(nx.descendants(graph, s) for s in per_model)) - per_model
    runs = set()
    for stage in per_model & stale:
        runs |= {stage} | (nx.ancestors(graph, stage) & per_model)
    chains: dict[str, list[str]] = {}
    for stage in sorted(runs, key=lambda s: PER_MODEL.index(family(s))):
        chains.setdefault(stage.split("@", 1)[1], []).append(stage)
    return sorted(upstream), dict(sorted(chains.items()))


def _dvc(*args: str, capture: bool = False) -> str:
    done = subprocess.run(["dvc", *args], check=True, text=True, capture_output=capture)
    return done.stdout if capture else ""


def _stage_graph() -> tuple[nx.DiGraph, dict[str, str]]:
    from dvc.repo import Repo  # imported here: the dry plan and the tests need no repo lock

    with Repo(".") as repo:
        graph = repo.index.graph
        names = nx.relabel_nodes(graph, {s: s.addressing for s in graph.nodes})
        commands = {s.addressing: s.cmd for s in graph.nodes}
    return names, commands


def _run_chain(stages: list[str], commands: dict[str, str], params: str, env: dict,
               progress: tqdm) -> list[str]:  # fmt: skip
    """Run one model's stages in order; return those that finished."""
    finished = []
    for stage in stages:
        log = LOGS / f"{stage.replace('@', '_')}.log"
        started = time.perf_counter()
        with open(log, "w") as out:
            code = subprocess.call(
                f"{commands[stage]} --params {params}", shell=True, env=env,
                stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        if code != 0:
            progress.write(f"error: {stage} failed (exit {code}); its output: {log}")
            return finished
        finished.append(stage)
        progress.write(f"{stage}: {time.perf_counter() - started:.0f} s")
        progress.update()
    return finished


def _run_lanes(chains: dict[str, list[str]], commands: dict[str, str], lanes: int,
               cores: int) -> list[str]:  # fmt: skip
    """Run the chains ``lanes`` at a time with ``cores / lanes`` threads each."""
    threads = max(1, cores // min(lanes, len(chains)))
    settings = yaml.safe_load(Path("params.yaml").read_text())
    settings["train"]["num_threads"] = threads  # read by every model-running stage
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    LOGS.mkdir(parents=True, exist_ok=True)
    finished: list[str] = []
    total = sum(len(chain) for chain in chains.values())
    with (
        tempfile.TemporaryDirectory() as tmp,
        tqdm(total=total, desc=f"per-model stages, {lanes} lanes", unit="stage") as bar,
        ThreadPoolExecutor(max_workers=lanes) as pool,
    ):
        params = Path(tmp) / "params.yaml"
        params.write_text(yaml.safe_dump(settings, sort_keys=False))
        for done in pool.map(
            lambda c: _run_chain(c, commands, str(params), env, bar), chains.values()
        ):
            finished += done
    return finished


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cores = os.cpu_count() or 1
    parser.add_argument("--lanes", type=int, default=cores, help="models at once (default: cores)")
    parser.add_argument("--dry-run", action="store_true", help="print the plan, run nothing")
    args = parser.parse_args()
    if args.lanes < 1:
        parser.error(f"--lanes must be at least 1, got {args.lanes}")
    graph, commands = _stage_graph()
    upstream, _ = plan(graph, set())
    if args.dry_run:
        stale = set(json.loads(_dvc("status", "--json", capture=True) or "{}"))
        _, chains = plan(graph, stale)
        print(json.dumps({"upstream": upstream, "chains": chains}, indent=1))
        return 0
    _dvc("repro", *upstream)
    stale = set(json.loads(_dvc("status", "--json", capture=True) or "{}"))
    _, chains = plan(graph, stale)
    if chains:
        finished = _run_lanes(chains, commands, args.lanes, cores)
        if finished:
            _dvc("commit", "--force", *finished)
        missing = sum(len(c) for c in chains.values()) - len(finished)
        if missing:
            print(f"error: {missing} per-model stages did not run; see {LOGS}", file=sys.stderr)
            return 1
    _dvc("repro")
    return 0


if __name__ == "__main__":
    sys.exit(main())
