"""``python -m trdnet``: the same command line as ``trdnet``."""

import sys

from .cli import main

sys.exit(main())
