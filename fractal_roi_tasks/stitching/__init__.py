"""Tile stitching and label de-duplication, on numpy arrays.

`pairwise` measures the offset between overlapping tiles, `solve` places all
tiles from those offsets, `fusion` writes the fused image block by block and
`labels` fuses label images, giving every object cut by a tile border one id.
"""
