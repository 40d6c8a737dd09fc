"""Use cases: the task path's as small classes holding only their collaborators (wiring.py builds
them, gateway.py is the composition root), the operator's as functions of the ``Gateway``."""
