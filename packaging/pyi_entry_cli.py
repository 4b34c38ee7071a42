"""Entry script of the packaged ``medgan`` command line (PyInstaller)."""

import sys

from medgan_desktop.cli import main

if __name__ == "__main__":
    sys.exit(main())
