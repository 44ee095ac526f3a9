from .distiller_relations import plot_distiller_relations
from .plots import plot_ap_bars, plot_curves, plot_relation_graphs

__all__ = ['plot_ap_bars', 'plot_curves', 'plot_relation_graphs', 'plot_distiller_relations']
