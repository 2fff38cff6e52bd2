import sys

from ferkit.cli.main import main

sys.exit(main())
