"""``python -m gatehouse_cli``: the same as the ``gatehouse`` console script."""

import sys

from gatehouse_cli.main import main

sys.exit(main())
