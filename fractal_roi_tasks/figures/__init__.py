"""Overview figures of what the tasks did: one panel per operation.

`panels` draws RGB arrays from numpy arrays (no files, no matplotlib),
`read` gathers the crops from a plate the tasks have run on (with ngio, crops
and coarse levels only), `drift` the drift path and kymographs of a time-lapse
with a drift table (one time point's strip at a time), `compose` lays the panels out with matplotlib (an
optional extra: ``pip install "fractal-roi-tasks[figure]"``).
"""
