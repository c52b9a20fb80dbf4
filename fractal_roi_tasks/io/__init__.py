"""What ngio does not do for us: file swaps, plate context, label metadata."""
