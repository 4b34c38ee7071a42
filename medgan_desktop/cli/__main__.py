"""``python -m medgan_desktop.cli`` (used by torchrun)."""

import sys

from medgan_desktop.cli import main

sys.exit(main())
