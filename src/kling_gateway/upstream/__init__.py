"""The only code that knows Kling: URLs, signing, JSON shapes, error codes.
Everything else sees our types."""
