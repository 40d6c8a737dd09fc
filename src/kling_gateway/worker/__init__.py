"""Background workers: each has ``run_once()`` (one pass, returns a count) and a thin loop on it."""
