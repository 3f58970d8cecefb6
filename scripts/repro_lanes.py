"""Reproduce the pipeline with the per-model stages in parallel lanes (``make repro``).

``dvc repro`` runs one stage at a time, and every model-running stage uses
``runtime.num_threads`` threads (1 by default: the thread count changes float rounding, so
the committed results are for one count). The six models of the default profile are
independent, so this:

1. runs ``dvc repro`` for the stages training reads (the data);
2. runs the other stale stages the models read (the feature networks) and each stale
   per-model stage (``train``, ``evaluate``, ``samples``, ``cache_activations``,
   ``analyze`` of every dataset and seed) with everything that reads a stage about to
   run, model by model, ``--lanes`` chains at once (default: cores / ``runtime.num_threads``),
   each stage with its own dvc.yaml command once the stages it reads are done;
3. records every stage that finished with ``dvc commit`` (as ``dvc repro`` would have);
4. runs ``dvc repro`` for the rest (cross_dataset, stats, figures, report).

The outputs are those ``dvc repro`` gives on the same machine, in about half the time on
two cores. Usage::

    python scripts/repro_lanes.py [--lanes N] [--dry-run]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
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
    """``(first, chains)``: the stages training reads, and the chains to run in lanes.

    ``graph`` has an edge from each stage to every stage it depends on (DVC's index
    graph, by name). ``first`` (the data) runs before the lanes. Every other stage the
    models read (the feature networks) is a chain of its own, listed first, so it runs
    beside the first trainings. A per-model stage runs when it is stale or reads,
    directly or not, a stage that runs; each model's chain (keyed by the matrix item, e.g.
    ``synthetic-0``) lists its stages in :data:`PER_MODEL` order.
    """
    per_model = {s for s in graph if family(s) in PER_MODEL and "@" in s}
    upstream = set().union(*(nx.descendants(graph, s) for s in per_model)) - per_model
    trains = [s for s in per_model if family(s) == "train"]
    first = set().union(*(nx.descendants(graph, s) for s in trains))
    beside = (upstream - first) & stale
    runs = set(beside)
    for stage in (per_model & stale) | beside:
        runs |= {stage} | (nx.ancestors(graph, stage) & per_model)
    chains = {stage: [stage] for stage in sorted(beside)}
    models: dict[str, list[str]] = {}
    for stage in sorted(runs - beside, key=lambda s: PER_MODEL.index(family(s))):
        models.setdefault(stage.split("@", 1)[1], []).append(stage)
    return sorted(first), chains | dict(sorted(models.items()))


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


def _run_chain(
    stages: list[str], commands: dict[str, str], env: dict, after: dict[str, set[str]],
    done: dict[str, threading.Event], failed: set[str], progress: tqdm,
) -> list[str]:  # fmt: skip
    """Run one chain's stages in order, each once the stages it reads (``after``) are done;
    return those that finished."""
    finished = []
    for stage in stages:
        for needed in after[stage]:
            done[needed].wait()
        if after[stage] & failed:
            progress.write(f"error: {stage} not run: {', '.join(after[stage] & failed)} failed")
            break
        log = LOGS / f"{stage.replace('@', '_')}.log"
        started = time.perf_counter()
        with open(log, "w") as out:
            code = subprocess.call(commands[stage], shell=True, env=env, stdout=out,
                                   stderr=subprocess.STDOUT)  # fmt: skip
        if code != 0:
            progress.write(f"error: {stage} failed (exit {code}); its output: {log}")
            failed.add(stage)
            break
        finished.append(stage)
        done[stage].set()
        progress.write(f"{stage}: {time.perf_counter() - started:.0f} s")
        progress.update()
    for stage in stages[len(finished) :]:  # release whatever waits on a stage that will not run
        failed.add(stage)
        done[stage].set()
    return finished


def _run_lanes(chains: dict[str, list[str]], graph: nx.DiGraph, commands: dict[str, str],
               lanes: int, threads: int) -> list[str]:  # fmt: skip
    """Run the chains ``lanes`` at a time, in order; OpenMP gets the stages' thread count."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    LOGS.mkdir(parents=True, exist_ok=True)
    scheduled = [stage for chain in chains.values() for stage in chain]
    after = {stage: set(graph.successors(stage)) & set(scheduled) for stage in scheduled}
    done = {stage: threading.Event() for stage in scheduled}
    failed: set[str] = set()
    finished: list[str] = []
    with (
        tqdm(total=len(scheduled), desc=f"stages, {lanes} lanes", unit="stage") as bar,
        ThreadPoolExecutor(max_workers=lanes) as pool,  # starts chains in submission order
    ):
        for ran in pool.map(
            lambda c: _run_chain(c, commands, env, after, done, failed, bar), chains.values()
        ):
            finished += ran
    return finished


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    threads = int(yaml.safe_load(Path("params.yaml").read_text())["runtime"]["num_threads"])
    lanes = max(1, (os.cpu_count() or 1) // threads)
    parser.add_argument("--lanes", type=int, default=lanes,
                        help=f"models at once (default: cores / runtime.num_threads = {lanes})")  # fmt: skip
    parser.add_argument("--dry-run", action="store_true", help="print the plan, run nothing")
    args = parser.parse_args()
    if args.lanes < 1:
        parser.error(f"--lanes must be at least 1, got {args.lanes}")
    graph, commands = _stage_graph()
    first, _ = plan(graph, set())
    if args.dry_run:
        stale = set(json.loads(_dvc("status", "--json", capture=True) or "{}"))
        _, chains = plan(graph, stale)
        print(json.dumps({"first": first, "chains": chains}, indent=1))
        return 0
    _dvc("repro", *first)
    stale = set(json.loads(_dvc("status", "--json", capture=True) or "{}"))
    _, chains = plan(graph, stale)
    if chains:
        finished = _run_lanes(chains, graph, commands, args.lanes, threads)
        if finished:
            _dvc("commit", "--force", *finished)
        missing = sum(len(c) for c in chains.values()) - len(finished)
        if missing:
            print(
                f"error: {missing} stages did not run; their output is in {LOGS}/", file=sys.stderr
            )
            return 1
    _dvc("repro")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except subprocess.CalledProcessError as failure:  # dvc printed its own reason above
        print(f"error: {' '.join(failure.cmd[:2])} failed (exit {failure.returncode})",
              file=sys.stderr)  # fmt: skip
        sys.exit(failure.returncode)
