"""``python -m fractal_roi_tasks.cli``: the same as the ``fractal-roi-tasks`` command."""

import sys

from fractal_roi_tasks.cli import main

sys.exit(main())
