"""vrm_det: virtual relation matching distillation for OpenMMLab detectors.

Importing the package registers its models into mmdet's (and mmpretrain's)
registries and makes mmengine's own checkpoints loadable under torch's
``weights_only`` unpickler, so a config needs only::

    custom_imports = dict(imports=['vrm_det'], allow_failed_imports=False)

``vrm_det.functional`` (the relation math) needs torch alone: without
mmengine and mmdet installed the registration is skipped.
"""
from .version import __version__

try:
    import mmdet  # noqa: F401
    import mmengine  # noqa: F401
except ModuleNotFoundError as error:
    if error.name not in ('mmdet', 'mmengine'):
        raise
    OPENMMLAB_AVAILABLE = False
else:
    OPENMMLAB_AVAILABLE = True
    from .checkpoint import register_safe_checkpoint_loading

    register_safe_checkpoint_loading()
    from . import engine, models  # noqa: F401  (registers hooks and models)

__all__ = ['__version__', 'OPENMMLAB_AVAILABLE']
