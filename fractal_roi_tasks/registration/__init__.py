"""Image registration (see the registration issues); nothing here yet."""
