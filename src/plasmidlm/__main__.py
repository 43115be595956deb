import sys

from plasmidlm.cli import main

sys.exit(main())
