import sys

from nada.cli import main

sys.exit(main())
