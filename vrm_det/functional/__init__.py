"""The distillation math in plain torch: no mmdet, mmengine or mmpretrain."""
from .dist import dist_divergence
from .dkd import dkd_divergence
from .edges import (
                    DEFAULT_EDGE_FLOOR,
                    cosine_gram,
                    direct_edge_mask,
                    edge_length_floor,
                    edge_matching_error_fused,
                    edge_matching_error_reference,
                    edge_penalty,
                    gram_matching_error,
                    logit_scale,
                    long_edge_mask,
                    unit_edges,
)
from .gram import gram_relation_divergence
from .kd import kd_divergence
from .pruning import (
                      joint_entropy,
                      kept_entropy_threshold,
                      kth_smallest,
                      prediction_entropy,
                      unreliable_edge_mask,
)
from .rkd import rkd_divergence
from .sharded import sharded_kept_entropy_threshold, sharded_kth_smallest, sharded_vrm_terms
from .shards import VertexShards, active_vertex_shards, vertices_sharded
from .vrm import VRMTerms, inter_class_vertices, masked_mean, relation_floor, vrm_terms

__all__ = [
    'DEFAULT_EDGE_FLOOR', 'edge_length_floor', 'logit_scale', 'long_edge_mask',
    'dist_divergence', 'dkd_divergence', 'cosine_gram', 'direct_edge_mask',
    'edge_matching_error_fused',
    'edge_matching_error_reference', 'edge_penalty', 'gram_matching_error', 'unit_edges',
    'gram_relation_divergence', 'kd_divergence', 'joint_entropy', 'prediction_entropy',
    'kth_smallest', 'kept_entropy_threshold', 'unreliable_edge_mask', 'rkd_divergence',
    'VRMTerms', 'inter_class_vertices',
    'masked_mean', 'relation_floor', 'vrm_terms', 'VertexShards', 'active_vertex_shards',
    'vertices_sharded', 'sharded_kept_entropy_threshold', 'sharded_kth_smallest',
    'sharded_vrm_terms'
]
