"""``python -m streamal`` is the ``streamal`` command."""

import sys

from streamal.cli import main

sys.exit(main())
