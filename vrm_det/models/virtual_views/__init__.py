from .photometric import PHOTOMETRIC_OPS, PhotometricRandAugment

__all__ = ['PHOTOMETRIC_OPS', 'PhotometricRandAugment']
