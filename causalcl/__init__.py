"""causalcl: contrastive self-supervised learning seen through causality.

Train a contrastive method (``causalcl.methods``) on embedded SCM data or a local dataset
(``causalcl.data``), then diagnose what the representation learned with the stand-alone
``evaluations`` package.
"""

__version__ = "0.1.0"
