"""``python -m explorer.concepts.lcm train|eval ...`` (see :func:`explorer.concepts.lcm.main`)."""
import sys

from . import main

sys.exit(main())
