import sys

from pitbox.cli import main

sys.exit(main())
