"""The distillation math in plain torch: no mmdet, mmengine or mmpretrain."""
from .dist import dist_divergence
from .dkd import dkd_divergence
from .edges import (
                    cosine_gram,
                    edge_matching_error_fused,
                    edge_matching_error_reference,
                    edge_penalty,
                    gram_matching_error,
                    unit_edges,
)
from .gram import gram_relation_divergence
from .kd import kd_divergence
from .pruning import joint_entropy, kth_smallest, prediction_entropy, unreliable_edge_mask
from .rkd import rkd_divergence
from .vrm import VRMTerms, inter_class_vertices, masked_mean, vrm_terms

__all__ = [
    'dist_divergence', 'dkd_divergence', 'cosine_gram', 'edge_matching_error_fused',
    'edge_matching_error_reference', 'edge_penalty', 'gram_matching_error', 'unit_edges',
    'gram_relation_divergence', 'kd_divergence', 'joint_entropy', 'prediction_entropy',
    'kth_smallest', 'unreliable_edge_mask', 'rkd_divergence', 'VRMTerms', 'inter_class_vertices',
    'masked_mean', 'vrm_terms'
]
