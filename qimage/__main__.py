import sys

from qimage.cli import main

sys.exit(main())
