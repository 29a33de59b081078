"""`python -m shared.cli`: the support-assistant command line."""

import sys

from shared.cli.main import main

sys.exit(main())
