"""``python -m fairaudit``: see :mod:`fairaudit._cli`."""

import sys

from ._cli import main

sys.exit(main())
