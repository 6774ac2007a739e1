import sys

from tomctl.cli import main

sys.exit(main())
