"""A RetinaNet built here, for offline tests and the demo."""
