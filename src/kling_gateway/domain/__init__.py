"""Pure domain rules: what a Kling request may contain, per model, with no I/O."""
