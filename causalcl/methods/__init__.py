"""Self-supervised methods. ``METHODS`` is the only registry: a plain dict of name → class."""

import difflib

from .barlow_twins import BarlowTwins
from .base import Method
from .byol import BYOL
from .clsa import CLSA
from .cmc import CMC
from .cpc import CPC
from .dacl import DACL
from .dgi import DGI
from .dim import DIM
from .directclr import DirectCLR
from .icl_msr import ICLMSR
from .lmcl import LMCL
from .looc import LooC, LooCPP
from .metaug import MetAug, MetAugOUCL
from .moco import MoCo
from .nnclr import NNCLR
from .npid import NPID
from .pirl import PIRL
from .relic import ReLIC, ReLICT
from .ressl import ReSSL
from .rotation import Rotation
from .simclr import SimCLR
from .simsiam import SimSiam
from .ssl_hsic import SSLHSIC
from .swav import SwAV
from .taco import TaCo
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
    "npid": NPID, "pirl": PIRL, "clsa": CLSA,
    "nnclr": NNCLR,
    "dacl": DACL,
    "lmcl": LMCL,
    "rotation": Rotation,
    "cpc": CPC,
    "dim": DIM,
    "ssl_hsic": SSLHSIC,
    "taco": TaCo,
    "dgi": DGI,
}


def get_method(name: str) -> type[Method]:
    """Look up a method class by name, with the list of valid names in the error."""
    if name not in METHODS:
        close = difflib.get_close_matches(str(name), list(METHODS), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"method: unknown name {name!r}{hint} (valid names: {', '.join(sorted(METHODS))})")
    return METHODS[name]


__all__ = ["BYOL", "CMC", "DirectCLR", "ICLMSR", "LooC", "LooCPP", "METHODS", "MetAug", "MetAugOUCL", "Method",
           "MoCo", "ReLIC", "ReLICT", "ReSSL", "SimCLR",
           "SimSiam", "BarlowTwins", "SwAV", "WMSE", "get_method",
           "CLSA", "NPID", "PIRL",
           "DACL", "LMCL", "NNCLR", "Rotation", "CPC", "DIM", "SSLHSIC"]
