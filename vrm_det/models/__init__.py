from . import distillers, losses, virtual_views  # noqa: F401
