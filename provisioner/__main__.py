"""`python -m provisioner`: the same entry point as the `provision` console script."""

import sys

from provisioner.cli import main

sys.exit(main())
