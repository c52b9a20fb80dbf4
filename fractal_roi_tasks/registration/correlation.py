"""Former home of the correlation steps, now in `fractal_roi_tasks.translation`.

Kept so that existing imports (``from fractal_roi_tasks.registration.correlation
import block_mean``) go on working; new code imports from the translation
package: intensities from `fractal_roi_tasks.translation.intensity`, tapers,
spectra and bands from `fractal_roi_tasks.translation.spectra`, correlation
peaks from `fractal_roi_tasks.translation.peak`, the coarse whole-pixel step
from `fractal_roi_tasks.translation.whole_pixel`, and the z step from
`fractal_roi_tasks.registration.z_shift`.

>>> from fractal_roi_tasks.translation import intensity
>>> block_mean is intensity.block_mean
True
"""

from fractal_roi_tasks.registration.z_shift import plane_weights, z_displacement
from fractal_roi_tasks.translation.intensity import block_mean, clip_to_quantiles, sorted_quantiles
from fractal_roi_tasks.translation.peak import (
    correlation_grid,
    grid_peak,
    newton_maximum,
)
from fractal_roi_tasks.translation.spectra import (
    Band,
    band,
    fast_shape,
    taper_1d,
    windowed_spectrum,
)
from fractal_roi_tasks.translation.whole_pixel import coarse_displacement

__all__ = [
    "Band",
    "band",
    "block_mean",
    "clip_to_quantiles",
    "coarse_displacement",
    "correlation_grid",
    "fast_shape",
    "grid_peak",
    "newton_maximum",
    "plane_weights",
    "sorted_quantiles",
    "taper_1d",
    "windowed_spectrum",
    "z_displacement",
]
