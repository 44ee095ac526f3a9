from .distiller_relations import plot_distiller_relations
from .plots import plot_curves, plot_metric_spread, plot_relation_graphs

__all__ = ['plot_metric_spread', 'plot_curves', 'plot_relation_graphs', 'plot_distiller_relations']
