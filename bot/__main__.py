"""`python -m bot` starts the CLI."""

import sys

from bot.cli import main

sys.exit(main())
