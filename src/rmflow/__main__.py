"""``python -m rmflow``: what every workflow rule runs (see workflow/rules/common.smk, RMFLOW)."""

import sys

from rmflow.cli import main

sys.exit(main())
