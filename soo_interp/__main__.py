"""`python -m soo_interp` is the `soo-interp` command."""
import sys

from .cli import main

sys.exit(main())
