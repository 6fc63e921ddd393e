"""``python -m mmlab``: the same as the ``mmlab`` command."""

import sys

from .cli import main

sys.exit(main())
