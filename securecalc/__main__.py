import sys

from securecalc.cli import main

sys.exit(main())
