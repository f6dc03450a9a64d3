import sys

from tourviews.cli import main

sys.exit(main())
