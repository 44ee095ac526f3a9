# KD on RoI logits at the setting published for Faster R-CNN: Chen et al.,
# "Learning Efficient Object Detection Models with Knowledge Distillation"
# (NeurIPS 2017), Sec. 3.1: no temperature (T = 1) works best for detection, and
# the soft and hard classification losses are weighted equally (mu = 0.5 there,
# weight 1 beside the detector's own loss weight 1 here: the same ratio). Their
# class-weighted soft loss (background weight 1.5) is not applied.
kd_loss = dict(_delete_=True, type='KDLoss', temperature=1.0, loss_weight=1.0)
