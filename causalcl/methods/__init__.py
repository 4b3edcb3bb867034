"""Self-supervised methods. ``METHODS`` is the only registry: a plain dict of name → class."""

from .barlow_twins import BarlowTwins
from .base import Method
from .byol import BYOL
from .cmc import CMC
from .directclr import DirectCLR
from .icl_msr import ICLMSR
from .looc import LooC, LooCPP
from .metaug import MetAug, MetAugOUCL
from .moco import MoCo
from .relic import ReLIC, ReLICT
from .ressl import ReSSL
from .simclr import SimCLR
from .simsiam import SimSiam
from .swav import SwAV
from .wmse import WMSE

METHODS: dict[str, type[Method]] = {
    "simclr": SimCLR,
    "moco": MoCo,
    "byol": BYOL,
    "simsiam": SimSiam,
    "barlow_twins": BarlowTwins,
    "swav": SwAV,
    "wmse": WMSE,
    "ressl": ReSSL,
    "directclr": DirectCLR,
    "cmc": CMC,
    "metaug": MetAug,
    "metaug_oucl": MetAugOUCL,
    "relic": ReLIC,
    "relic_t": ReLICT,
    "looc": LooC,
    "looc_pp": LooCPP,
    "icl_msr": ICLMSR,
}


def get_method(name: str) -> type[Method]:
    """Look up a method class by name, with the list of valid names in the error."""
    if name not in METHODS:
        raise ValueError(f"method: unknown name {name!r}; valid names are {sorted(METHODS)}")
    return METHODS[name]


__all__ = ["BYOL", "CMC", "DirectCLR", "ICLMSR", "LooC", "LooCPP", "METHODS", "MetAug", "MetAugOUCL", "Method",
           "MoCo", "ReLIC", "ReLICT", "ReSSL", "SimCLR",
           "SimSiam", "BarlowTwins", "SwAV", "WMSE", "get_method"]
