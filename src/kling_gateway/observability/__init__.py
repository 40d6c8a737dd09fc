"""Metrics, structured logs and request context: how an operator sees what the gateway is doing.

Kept apart from the request code so the hooks into it stay a few lines each:
``http.app`` installs the middleware and ``/metrics`` (``endpoint.install``), the
``Gateway`` owns a ``Telemetry`` that the status compare-and-set, the upstream client
and the webhook worker report to, and ``cli.main`` turns on the JSON log format. Nothing
is global: each app has its own registry, so tests can build several side by side.
"""
