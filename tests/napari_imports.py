"""napari's viewer model and layer classes, imported as the napari tests need them.

npe2 (which napari imports) still declares pydantic-1 style fields, and
pydantic 2 warns about them once, at import; warnings are errors in the tests.
"""

import warnings

with warnings.catch_warnings():
    for message in (
        "Using extra keyword arguments on `Field` is deprecated",
        "`json_encoders` is deprecated",
        "`allow_mutation` is deprecated",
    ):
        warnings.filterwarnings("ignore", message=message, category=DeprecationWarning)
    from napari.components import ViewerModel
    from napari.layers import Image, Labels, Layer, Points, Shapes

__all__ = ["Image", "Labels", "Layer", "Points", "Shapes", "ViewerModel"]
