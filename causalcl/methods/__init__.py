"""Self-supervised methods. ``METHODS`` is the only registry: a plain dict of name → class."""

from .base import Method
from .simclr import SimCLR

METHODS: dict[str, type[Method]] = {
    "simclr": SimCLR,
}


def get_method(name: str) -> type[Method]:
    """Look up a method class by name, with the list of valid names in the error."""
    if name not in METHODS:
        raise ValueError(f"method: unknown name {name!r}; valid names are {sorted(METHODS)}")
    return METHODS[name]


__all__ = ["METHODS", "Method", "SimCLR", "get_method"]
