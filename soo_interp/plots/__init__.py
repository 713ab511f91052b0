"""Figures from result DataFrames. Every function returns a matplotlib Figure (never shows it);
save with `fig.savefig(path)`. A leaf: it draws tables it is given and imports no analysis module
(summaries come from `soo_interp.stats`). One module per family of figures; import them from here."""
from .evaluation import LABEL_COLORS, position_bias_plot, rates_plot
from .ladder import ladder_plot
from .probes import room_probe_plot, separability_heatmap, separability_layer_plot, signature_plot
from .soo import default_metric, geometry_plot, soo_heatmap, soo_layer_plot
from .training import effect_heatmap, organism_curve_plot, pareto_plot, sweep_plot, training_curves

__all__ = ["default_metric", "soo_heatmap", "soo_layer_plot", "geometry_plot", "LABEL_COLORS",
           "rates_plot", "position_bias_plot", "separability_layer_plot", "separability_heatmap",
           "signature_plot", "sweep_plot", "training_curves", "pareto_plot", "effect_heatmap",
           "organism_curve_plot", "room_probe_plot", "ladder_plot"]
