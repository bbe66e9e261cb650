import sys

from nse_engine.cli import main

sys.exit(main())
