"""Tile stitching and label de-duplication (see the stitching issue); nothing here yet."""
