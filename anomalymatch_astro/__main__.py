"""``python -m anomalymatch_astro``: the command line (same as ``anomalymatch-astro``)."""

import sys

from .cli import main

sys.exit(main())
