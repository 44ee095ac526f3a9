from . import backbones, distillers, losses, virtual_views  # noqa: F401
