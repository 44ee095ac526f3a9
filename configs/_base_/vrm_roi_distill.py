# VRM on Faster R-CNN RoI logits: the settings the COCO distillation configs share.
# The weights are this project's starting point for detection, not the paper's
# (which does not publish them); tune alpha and beta for your pair.
distill_loss = dict(
    type='VRMLoss', alpha=4.0, beta=1.0, keep_percentile=95, joint_entropy='sum',
    ic_edges='cross', relation='vector', loss='l2',
    # The detection stabiliser, a deviation from the paper's unit edges
    # (docs/user_guide.md, "Stability").
    edge_floor=0.5, short_edges='match')
virtual_view = dict(type='PhotometricRandAugment', num_ops=2, magnitude=0.5)
# Per-iteration VRM statistics (kept-edge fraction, terms) to the visualizer's backends.
custom_hooks = [dict(type='DistillStatsHook', interval=50)]
