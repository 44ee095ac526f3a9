from . import distillers, losses  # noqa: F401
