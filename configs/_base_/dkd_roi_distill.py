# DKD on RoI logits at its authors' detection setting: megvii-research/mdistiller,
# detection/model/config.py (KD.DKD.ALPHA 1.0, BETA 0.25, T 1.0), applied there as
# here to the RoI head's logits of the student's sampled proposals, with their labels.
dkd_loss = dict(_delete_=True, type='DKDLoss', alpha=1.0, beta=0.25, temperature=1.0)
