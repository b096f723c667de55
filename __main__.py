"""``python -m genbounds``: the same command line as the ``genbounds`` script."""

import sys

from genbounds.cli import main

sys.exit(main())
