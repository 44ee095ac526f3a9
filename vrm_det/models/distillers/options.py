"""Build-time checks of config options against the signature they are for."""
import difflib
import inspect
from typing import Iterable


def check_options(owner: type, options: Iterable[str], where: str = '') -> None:
    """Raise if an option is not a parameter of ``owner.__init__``.

    A misspelled option would otherwise fail as Python's ``unexpected keyword
    argument`` deep inside the registry, or, where a class takes
    ``**kwargs``, not at all.

    Args:
        owner (type): The class the options configure.
        options (Iterable[str]): The option names given (``type`` is ignored).
        where (str): Where the options sit in the config, e.g.
            ``'model.distill_loss'``, for the message.

    Raises:
        TypeError: Naming the unknown option, the closest known one and the
            full list.
    """
    parameters = inspect.signature(owner.__init__).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return
    known = [name for name in parameters if name != 'self']
    for name in options:
        if name == 'type' or name in known:
            continue
        close = difflib.get_close_matches(name, known, n=1)
        hint = f'did you mean {close[0]!r}? ' if close else ''
        raise TypeError(f'{where or owner.__name__}: {owner.__name__} has no option {name!r}; '
                        f'{hint}Its options: {", ".join(known)}')


def check_config_options(registry, cfg: dict, where: str) -> None:
    """:func:`check_options` for a config that ``registry`` builds; a type the
    registry does not know is left to the registry's own error."""
    owner = cfg.get('type')
    if isinstance(owner, str):
        owner = registry.get(owner)
    if isinstance(owner, type):
        check_options(owner, cfg, where)
