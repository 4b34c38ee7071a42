"""medgan desktop: GUI entry point (``python main.py --help``)."""

import sys

from medgan_desktop.qt.app import main

if __name__ == "__main__":
    sys.exit(main())
