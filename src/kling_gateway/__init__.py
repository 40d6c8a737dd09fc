"""kling-gateway: Kling's own text2video API, served strictly, billed exactly,
tracked to the end."""

__version__ = "0.1.0"
