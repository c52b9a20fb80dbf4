"""``python -m fractal_roi_tasks.cli``: the same as the ``fractal-roi-tasks`` command."""

import sys

from fractal_roi_tasks.cli import main

if __name__ == "__main__":  # importing the module (doctest collection) runs nothing
    sys.exit(main())
