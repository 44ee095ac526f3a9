# VRM on classification logits at the paper's weights (Zhang et al., ICCV 2025, arXiv
# 2502.20760: alpha 128 on the inter-sample graph, beta 32 on the inter-class graph); the
# pruning percentile and the edge encoding at VRMLoss's defaults, which are the paper's loss:
# every edge a unit vector (edge_floor 0; the detection configs' floor is not used here). The
# student's cross-entropy comes from its head, at weight 1; VRM adds no KD term.
vrm_loss = dict(type='VRMLoss', alpha=128.0, beta=32.0)

# The virtual view is the second view of the data pipeline (datasets/*_virtual.py: RandAugment,
# two operations, geometric ones included). The alternative is the distiller's photometric
# view of the plain pipeline's images, virtual_view=dict(type='PhotometricRandAugment',
# num_ops=2, magnitude=0.5) with datasets/cifar100_bs64.py or in1k_bs32.py: photometric
# operations only, made on the normalised batch inside the model.
virtual_view = dict(type='PipelineView')
