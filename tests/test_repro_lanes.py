"""The lane planner of `make repro` (scripts/repro_lanes.py) on hand-made stage graphs."""

from pathlib import Path

import networkx as nx

from script_helper import load_script

ROOT = Path(__file__).resolve().parents[1]


def study_graph(seeds=(0, 1)) -> nx.DiGraph:
    """The default pipeline's shape: an edge from each stage to each stage it reads."""
    graph = nx.DiGraph()
    graph.add_edge("prepare_natural", "generate_synthetic")
    for dataset in ("synthetic", "natural"):
        data = "generate_synthetic" if dataset == "synthetic" else "prepare_natural"
        graph.add_edge(f"feature_net@{dataset}", data)
        for seed in seeds:
            model = f"{dataset}-{seed}"
            graph.add_edge(f"train@{model}", data)
            for stage in ("evaluate", "samples", "cache_activations"):
                graph.add_edge(f"{stage}@{model}", f"train@{model}")
            graph.add_edge(f"samples@{model}", f"feature_net@{dataset}")
            graph.add_edge(f"analyze@{model}", f"cache_activations@{model}")
            graph.add_edge(f"analyze@{model}", f"train@{model}")
            for late in ("cross_dataset", "stats", "report"):
                graph.add_edge(late, f"analyze@{model}")
    graph.add_edge("figures", "stats")
    return graph


def test_a_stale_training_runs_its_whole_model_in_order_and_nothing_else():
    first, chains = load_script("repro_lanes").plan(study_graph(), {"train@natural-1", "stats"})
    assert first == ["generate_synthetic", "prepare_natural"]
    assert chains == {
        "natural-1": ["train@natural-1", "evaluate@natural-1", "samples@natural-1",
                      "cache_activations@natural-1", "analyze@natural-1"]
    }  # fmt: skip


def test_only_what_reads_a_stale_stage_runs():
    plan = load_script("repro_lanes").plan
    _, chains = plan(study_graph(), {"samples@synthetic-0", "cache_activations@natural-0"})
    assert chains == {
        "natural-0": ["cache_activations@natural-0", "analyze@natural-0"],
        "synthetic-0": ["samples@synthetic-0"],
    }
    assert plan(study_graph(), set())[1] == {}


def test_a_stale_feature_network_runs_first_beside_the_models_and_its_samples_follow():
    _, chains = load_script("repro_lanes").plan(
        study_graph(), {"feature_net@natural", "train@synthetic-1"}
    )
    assert list(chains) == ["feature_net@natural", "natural-0", "natural-1", "synthetic-1"]
    assert chains["feature_net@natural"] == ["feature_net@natural"]
    assert chains["natural-0"] == ["samples@natural-0"]
    assert chains["synthetic-1"][0] == "train@synthetic-1" and len(chains["synthetic-1"]) == 5


def test_lanes_wait_for_what_a_stage_reads_and_stop_after_a_failure(tmp_path, monkeypatch):
    lanes = load_script("repro_lanes")
    monkeypatch.chdir(tmp_path)
    graph = nx.DiGraph([("samples@natural-0", "feature_net@natural"),
                        ("samples@natural-0", "train@natural-0"),
                        ("evaluate@natural-0", "train@natural-0"),
                        ("analyze@synthetic-0", "train@synthetic-0")])  # fmt: skip
    order = tmp_path / "order.txt"
    commands = {
        "feature_net@natural": f"sleep 0.5 && echo feature_net >> {order}",
        "train@natural-0": f"echo train >> {order}",
        "samples@natural-0": f"echo samples >> {order}",
        "evaluate@natural-0": f"echo evaluate >> {order}",
        "train@synthetic-0": "exit 3",
        "analyze@synthetic-0": f"echo analyze >> {order}",
    }
    chains = {
        "feature_net@natural": ["feature_net@natural"],
        "natural-0": ["train@natural-0", "samples@natural-0", "evaluate@natural-0"],
        "synthetic-0": ["train@synthetic-0", "analyze@synthetic-0"],
    }
    finished = lanes._run_lanes(chains, graph, commands, lanes=2, threads=1)
    assert order.read_text().split() == ["train", "feature_net", "samples", "evaluate"]
    assert sorted(finished) == ["evaluate@natural-0", "feature_net@natural", "samples@natural-0",
                                "train@natural-0"]  # fmt: skip
    assert (tmp_path / "logs/lanes/train_synthetic-0.log").exists()
