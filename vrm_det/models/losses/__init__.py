from .base import DistillLoss
from .baselines import DISTLoss, DKDLoss, GramRelationLoss, KDLoss, RKDLoss
from .vrm_loss import VRMLoss

__all__ = ['DistillLoss', 'VRMLoss', 'KDLoss', 'DKDLoss', 'DISTLoss', 'RKDLoss',
           'GramRelationLoss']
