"""`python -m gateway.shim`: the PyInstaller entry point of `pitbox-shim.exe`."""

import sys

from gateway.shim.cli import main

sys.exit(main())
