"""Figures read as they should (issue 23): integer layer ticks and no offset notation on the
geometry figure, a Pareto legend of what is drawn, RL rate intervals inside [0, 1], a y label on
every panel, and colour-bar ticks at the normalised scale's 0 and 1."""
import numpy as np
import pandas as pd

from soo_interp.plots import geometry_plot, pareto_plot, soo_heatmap, sweep_plot, training_curves
from soo_interp.rl.plots import behaviour_plot, training_plot


def _geometry():
    rows = []
    for layer in range(3):
        for comp in ("attn", "resid"):
            rows += [dict(layer=layer, component=comp, model="both", metric="delta_latent_soo",
                          value=-0.1 * layer),
                     dict(layer=layer, component=comp, model="both", metric="cka_base_tuned",
                          value=0.99999 + 1e-6 * layer)]
    return pd.DataFrame(rows).assign(pooling="last")


def _labelled(fig):
    return [ax.get_ylabel() for ax in fig.axes if ax.get_visible() and ax.has_data()]


def test_geometry_ticks_are_whole_layers_without_offset_notation():
    fig = geometry_plot(_geometry())
    fig.canvas.draw()
    for ax in fig.axes:
        ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
        assert ticks and all(float(t).is_integer() for t in ticks), ticks
        assert ax.yaxis.get_offset_text().get_text() == ""
    assert all(_labelled(fig))


def test_pareto_legend_lists_only_what_is_drawn():
    configs = pd.DataFrame({"damage": [0.0, 0.02, 0.1], "effect": [0.1, 0.3, 0.2],
                            "train_component": ["attn"] * 3})
    labels = [t.get_text() for t in pareto_plot(configs).axes[0].get_legend().get_texts()]
    assert "attn" in labels and "mlp" not in labels and "resid" not in labels


def test_rl_rate_intervals_stay_inside_0_1_and_panels_have_y_labels():
    summary = pd.DataFrame({
        "metric": ["trap_rate"] * 2 + ["soo_value"] * 2, "model": ["s0"] * 4,
        "condition": ["base", "soo"] * 2, "mean": [0.02, 0.97, -3.0, -4.0],
        "ci_low": [-0.3, 0.8, -3.5, -4.5], "ci_high": [0.2, 1.4, -2.5, -3.5]})
    fig = behaviour_plot(summary, metrics=("trap_rate", "soo_value"))
    rate_ax = fig.axes[0]
    segments = np.concatenate([c.get_segments() for c in rate_ax.collections])
    assert segments[..., 1].min() >= 0 and segments[..., 1].max() <= 1
    assert _labelled(fig) == ["rate", "mean log(MSE + 1e-25)"]
    logs = pd.DataFrame({"baseline": "deceptive", "seed": 0, "episodes": [100, 200],
                         "trap_rate": [0.1, 0.2], "blue_goal_rate": [0.5, 0.6],
                         "return_blue": [1.0, 2.0]})
    assert all(_labelled(training_plot(logs)))


def test_every_line_panel_has_a_y_label():
    log = pd.DataFrame({"condition": "soo", "seed": 0, "step": [0, 1], "metric": "objective",
                        "value": [2.0, 1.0]})
    assert all(_labelled(training_curves(log, metrics=("objective",))))
    sweep = pd.DataFrame({"condition": ["soo", "sham"], "train_layer": [1, 1], "seed": 0,
                          "scenario": "burglar", "metric": "deceptive_rate", "value": [0.2, 0.8]})
    assert _labelled(sweep_plot(sweep, panels=[("deceptive_rate", "burglar", "burglar")])) == [
        "rate"]


def test_normalised_heatmap_colour_bar_marks_the_floor_and_the_ceiling():
    df = pd.DataFrame({"layer": [0, 0, 1, 1], "component": ["attn", "mlp"] * 2,
                       "metric": "normalised_soo", "value": [0.2, 0.35, 0.5, 0.6]})
    bar = soo_heatmap(df).axes[0].collections[0].colorbar
    assert {0.0, 1.0} <= set(np.round(bar.get_ticks(), 6))
