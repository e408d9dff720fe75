"""Scripts that measure Evo (run each with ``python -m bench.<name>``)."""
