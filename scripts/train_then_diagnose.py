#!/usr/bin/env python
"""Train a contrastive method, then diagnose what it learned (also installed as ``causalcl``).

Run ``python scripts/train_then_diagnose.py --help`` for the options.
"""

import sys

from causalcl.cli import main

if __name__ == "__main__":
    sys.exit(main())
