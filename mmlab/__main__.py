"""``python -m mmlab``: the same as the ``mmlab`` command."""

import sys

from .app.cli import main

sys.exit(main())
