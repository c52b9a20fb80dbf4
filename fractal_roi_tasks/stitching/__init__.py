"""Tile stitching and label de-duplication, on numpy arrays.

Placement: `overlaps` finds the windows two tiles share, `pairwise` measures
the offset between them, `solve` places all tiles from those offsets.
Fusion: `mosaic` (where tiles lie, output blocks, what each block reads),
`ownership` (which tile owns a pixel, blending weights), `resampling` (the
cubic kernel), `fusion` (one block fused from its tiles).
Labels: `label_ids` (id arrays), `label_ownership` (the ids a tile shows),
`label_matching` (the same object in two tiles), `label_merge` (objects
across tiles, numbered 1..n), `labels` (one label block with final ids,
bounding boxes).
"""
