"""`python -m tcup` is the same program as `./tcup.pyz`."""

import sys

from tcup.launcher.entry import main

sys.exit(main())
