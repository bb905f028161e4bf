"""``python -m netlab.cli``: the command line, as the ``netlab`` script runs it."""

import sys

from netlab.cli.main import main

sys.exit(main())
