"""``python -m agentsim`` is the ``agentsim`` command."""

import sys

from agentsim.cli import main

sys.exit(main())
