"""``python -m foramen_train.gan``: see :mod:`foramen_train.gan.cli`."""

import sys

from .cli import main

sys.exit(main())
