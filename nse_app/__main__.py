"""`python -m nse_app`, and the entry script of the PyInstaller bundle."""

import sys

from nse_app.main import main

if __name__ == "__main__":
    sys.exit(main())
