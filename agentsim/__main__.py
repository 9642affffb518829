"""``python -m agentsim`` is the ``agentsim`` command."""

import sys

from agentsim.cli.main import main

sys.exit(main())
