"""Figures: titles that never collide, labelled rows, log scales, captions, controls."""

import dataclasses
import itertools
import re

import matplotlib.pyplot as plt
import numpy as np
import pytest
from figure_data import ATTENTION_HOOK, CHANCE, HOOKS, ZERO_OFFSET, make_figure_data
from matplotlib.colors import LogNorm

from diffusion_circuits.figures import CAPTIONS, FIGURES, render_all
from diffusion_circuits.figures.overview import image_grid
from diffusion_circuits.figures.panels import forward_order, log_scale
from diffusion_circuits.stats.tables import GROUP_ORDER


@pytest.fixture(scope="module")
def drawn(figure_data):
    """Every figure drawn once from the data with every optional control present."""
    figures = {name: draw(figure_data) for name, draw in FIGURES.items()}
    yield figures
    for fig in figures.values():
        plt.close(fig)


def panels(fig):
    """The lettered panels (colour bars are axes too, but carry no letter)."""
    return [ax for ax in fig.axes if hasattr(ax, "panel_letter")]


@pytest.mark.parametrize("name", list(FIGURES))
def test_letter_and_title_share_one_title_that_overlaps_nothing(drawn, name):
    fig = drawn[name]
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    boxes = []
    for ax in panels(fig):
        assert ax.get_title(loc="center") == ""
        assert ax.get_title(loc="left").startswith(rf"$\bf{{{ax.panel_letter}}}$")
        boxes.append((ax.panel_letter, ax._left_title.get_window_extent(renderer)))
    for (a, box_a), (b, box_b) in itertools.combinations(boxes, 2):
        assert not box_a.overlaps(box_b), f"{name}: titles {a} and {b} overlap"
    page = fig.bbox
    for letter, box in boxes:
        assert page.x0 <= box.x0 and box.x1 <= page.x1, f"{name}: title {letter} is cut off"


@pytest.mark.parametrize("name", list(FIGURES))
def test_axis_labels_lie_inside_the_page(drawn, name):
    """A long axis label at the page's edge is saved cut off (Figure 7(h) once was)."""
    fig = drawn[name]
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    page = fig.bbox
    for ax in panels(fig):
        for label in (ax.xaxis.label, ax.yaxis.label):
            if not label.get_text():
                continue
            box = label.get_window_extent(renderer)
            inside = (
                page.x0 <= box.x0 and box.x1 <= page.x1 and page.y0 <= box.y0 and box.y1 <= page.y1
            )
            assert inside, f"{name} ({ax.panel_letter}): axis label {label.get_text()!r} is cut off"


def test_every_row_panel_of_figure2_is_labelled(drawn, figure_data):
    rows = drawn["figure2_statistics"].axes[:4]
    labels = [[t.get_text() for t in ax.get_yticklabels()] for ax in rows]
    assert labels[0][0] == "entropy t=100"
    assert all(row == labels[0] for row in labels)
    assert len(labels[0]) == len(figure_data.comparisons)


def test_figure5_depth_axis_names_the_hooks(drawn):
    depth = drawn["figure5_feature_hierarchy"].axes[0]
    assert [t.get_text() for t in depth.get_xticklabels()] == list(HOOKS)


def test_figure5_depth_axis_is_in_forward_order_whatever_the_row_order(figure_data):
    """The activation table lists conv_out first in real runs; the axis must not."""
    study = figure_data.study
    shuffled = dataclasses.replace(
        figure_data,
        study=dataclasses.replace(
            study,
            activations=study.activations.iloc[::-1],
            information_flow=study.information_flow.sample(frac=1.0, random_state=0),
        ),
    )
    fig = FIGURES["figure5_feature_hierarchy"](shuffled)
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == list(HOOKS)
    plt.close(fig)


def test_forward_order_puts_hooks_off_the_path_last():
    hooks = ["z", "b", "c", "a"]
    assert forward_order(hooks, ["b->c", "a->b"]) == ["a", "b", "c", "z"]


def test_dominated_panels_use_log_scales(drawn):
    fig6 = panels(drawn["figure6_temporal_dynamics"])
    for heatmap in fig6[1:3]:
        assert isinstance(heatmap.collections[0].norm, LogNorm)
    fig7 = panels(drawn["figure7_interventions"])
    assert fig7[0].get_yscale() == "log"  # all layer-ablation impacts > 0
    assert fig7[2].get_yscale() == "symlog"  # some scaling impacts are negative


def test_figure9_draws_attention_over_the_clean_sample(drawn, figure_data):
    ax = panels(drawn["figure9_attention_trajectories"])
    n_cols = len(figure_data.tensors["synthetic"]["timesteps"])
    tensors = figure_data.tensors["synthetic"]
    clean = image_grid(tensors["samples"][:1])
    top, bottom = ax[0], ax[n_cols]
    np.testing.assert_allclose(top.images[0].get_array(), image_grid(tensors["states"][0][:1]))
    np.testing.assert_allclose(bottom.images[0].get_array(), clean)
    assert "over x0" in bottom.get_title(loc="left")
    assert ATTENTION_HOOK in bottom.get_title(loc="left")


def _labels(ax) -> list[str]:
    return [line.get_label() for line in ax.get_lines()]


def test_controls_are_drawn_where_present(drawn):
    accuracy = panels(drawn["figure3_dataset_comparison"])[0]
    assert "identity predictor (synthetic)" in _labels(accuracy)
    assert "Gaussian predictor (natural)" in _labels(accuracy)
    ife = panels(drawn["figure1_overview"])[5]
    assert "chance (permutation null)" in _labels(ife)
    cka = panels(drawn["figure8_cross_dataset"])[7]
    assert "trained vs untrained (control)" in _labels(cka)
    roles = [t.get_text() for t in panels(drawn["figure7_interventions"])[1].get_xticklabels()]
    assert roles == ["edge", "none"]


def test_figures_without_controls_still_draw():
    data = make_figure_data(controls=False, channels=3)
    for name in ("figure1_overview", "figure3_dataset_comparison", "figure8_cross_dataset"):
        fig = FIGURES[name](data)
        every_label = [label for ax in fig.axes for label in _labels(ax)]
        assert not any("predictor" in lab or "control" in lab or "chance" in lab
                       for lab in every_label)  # fmt: skip
        plt.close(fig)


def test_render_all_writes_each_png_with_its_caption(tmp_path, figure_data, monkeypatch):
    # Only the file handling is tested here; drawing is covered above.
    small = {name: FIGURES[name] for name in ("figure4_attention_heads",)}
    monkeypatch.setattr("diffusion_circuits.figures.FIGURES", small)
    paths = render_all(figure_data, tmp_path, dpi=30)
    assert paths == [tmp_path / "figure4_attention_heads.png"]
    assert paths[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    caption = paths[0].with_suffix(".txt").read_text()
    assert caption == CAPTIONS["figure4_attention_heads"] + "\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "figure4_attention_heads.png", "figure4_attention_heads.txt"
    ]  # fmt: skip


def _described_panels(caption: str) -> set[str]:
    """Panel letters a caption describes: ``(a)`` and ranges such as ``(c-d)``."""
    letters = set()
    for first, last in re.findall(r"\(([a-z])(?:-([a-z]))?\)", caption):
        letters |= {f"({chr(c)})" for c in range(ord(first), ord(last or first) + 1)}
    return letters


def test_every_figure_has_a_caption_describing_each_panel(drawn):
    assert set(CAPTIONS) == set(FIGURES)
    for name, fig in drawn.items():
        if name == "figure9_attention_trajectories":
            continue  # a grid of timesteps, described by row rather than by letter
        letters = {ax.panel_letter for ax in panels(fig)}
        assert letters == _described_panels(CAPTIONS[name]), name


@pytest.mark.parametrize(
    ("values", "scale", "linthresh"),
    [([1e-3, 5.0, 700.0], "log", None), ([-0.2, 0.003, 40.0], "symlog", 1e-3),
     ([0.0, 0.0], "symlog", 1e-4)],
)  # fmt: skip
def test_log_scale_picks_symlog_for_non_positive_values(values, scale, linthresh):
    fig, ax = plt.subplots()
    assert log_scale(ax, values) == scale
    assert ax.get_yscale() == scale
    if linthresh is not None:
        assert ax.yaxis.get_transform().linthresh == pytest.approx(linthresh)
    plt.close(fig)


def test_component_impacts_are_mean_ablation_only(drawn):
    # zero-ablation rows of the fixture are offset by ZERO_OFFSET: averaged in, they would show
    heads = panels(drawn["figure4_attention_heads"])[1]
    widths = [patch.get_width() for patch in heads.patches]
    assert widths and max(widths) < ZERO_OFFSET
    assert len(widths) == 2  # the synthetic model's two heads, not one bar per dataset row
    for heatmap in panels(drawn["figure6_temporal_dynamics"])[1:3]:
        assert heatmap.collections[0].get_array().max() < ZERO_OFFSET


def test_robustness_draws_all_components_beside_chance(drawn):
    across = panels(drawn["figure7_interventions"])[4]
    lines = {line.get_label(): line for line in across.get_lines()}
    line = lines["all components"]
    assert list(line.get_ydata()) == pytest.approx([0.6, 0.7])  # head-only 0.05 left out
    chance = lines["chance (random top-k)"]
    assert chance.get_ydata()[0] == pytest.approx(CHANCE)
    timesteps = panels(drawn["figure1_overview"])[3]
    assert "chance (random top-k)" in _labels(timesteps)


def test_feature_complexity_is_drawn_unit_free(drawn, figure_data):
    depth = panels(drawn["figure5_feature_hierarchy"])[0]
    acts = figure_data.study.activations
    scaled = acts[
        (acts["metric"] == "feature_complexity_scaled") & (acts["dataset"] == "synthetic")
    ]
    expected = scaled.groupby("hook", sort=False)["value"].mean().reindex(HOOKS)
    assert list(depth.get_lines()[0].get_ydata()) == pytest.approx(expected.tolist())
    assert "unit-free" in depth.get_ylabel()


def test_cka_heatmap_shows_the_cka_metric_only(drawn, figure_data):
    heatmap = panels(drawn["figure8_cross_dataset"])[5]
    cka = figure_data.cka[figure_data.cka["metric"] == "cka"]
    assert heatmap.collections[0].get_array().mean() == pytest.approx(cka["value"].mean())


@pytest.mark.parametrize("name", list(FIGURES))
def test_no_legend_covers_a_bar(drawn, name):
    fig = drawn[name]
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    for ax in panels(fig):
        legend = ax.get_legend()
        if legend is None:
            continue
        box = legend.get_window_extent(renderer)
        for bar in ax.patches:
            if bar.get_height() and bar.get_width():
                assert not box.overlaps(bar.get_window_extent(renderer)), (
                    f"{name} {ax.panel_letter}: the legend covers a bar"
                )


def test_bar_panels_keep_one_dataset_order_and_layer_groups_in_depth_order(drawn):
    overview = panels(drawn["figure1_overview"])
    for ax in overview:
        legend = ax.get_legend()
        if legend is not None and ax.patches:
            labels = [t.get_text() for t in legend.get_texts()]
            datasets = [label for label in labels if label in ("synthetic", "natural")]
            assert datasets == ["synthetic", "natural"][: len(datasets)], ax.panel_letter
    groups = [t.get_text() for t in overview[2].get_xticklabels()]
    assert groups == [g for g in GROUP_ORDER if g in groups]


def test_figure2_shows_what_the_design_detects_not_power_at_the_observed_effects(drawn):
    ax = panels(drawn["figure2_statistics"])[5]
    assert ax.get_title(loc="left").endswith("What the design can detect")
    _, labels = ax.get_legend_handles_labels()
    # 30 vs 30 images: |d| >= 0.74 at power 0.8 (pingouin power_ttest2n)
    assert labels == ["this study: 30 per group, |d| >= 0.74"]
    curve = ax.get_lines()[0].get_ydata()
    assert (np.diff(curve) < 0).all()  # more units, smaller detectable effects
