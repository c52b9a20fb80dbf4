"""Translation estimation on numpy arrays: the steps registration and stitching share.

One implementation of each step, in the order a measurement runs them:

- `intensity`: quantile clipping, block means (a coarse level), trend
  removal, gain matching, gaussian gradients.
- `spectra`: Tukey tapers placed with sub-pixel precision, windowed
  band-limited spectra, the frequency `Band`, phase ramps.
- `whole_pixel`: whole-pixel matches (phase correlation of whole images,
  normalised cross-correlation masked to the overlap).
- `peak`: the band-limited correlation as a continuous function of the
  shift, its grid maximum and its sub-pixel maximum by Newton's method, the
  normalised correlation (quality).
- `refine`: the loop that moves the tapered window until it agrees with the
  estimate (Broyden's method on that fixed point).
- `likelihood`: maximum-likelihood frequency weights and the expected error.
- `boxes`: the pixels two windows share at a whole-pixel displacement.

`fractal_roi_tasks.registration` (acquisitions of one field) and
`fractal_roi_tasks.stitching.pairwise` (overlapping tiles) are built on
these. Displacements are those of the moving content, (dy, dx) in pixels;
nothing here reads files or knows of ngio.
"""
