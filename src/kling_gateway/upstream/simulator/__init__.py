"""Built-in fake of Kling's legacy video API (text2video and every kind in the domain's registry),
for ``serve``, tests and benchmarks.

Faithful where kling-api.md is confident (envelope, codes, task shape, JWT rules, callbacks, 1303
concurrency) and fault-injectable everywhere a real upstream can hurt the gateway.
"""

from .app import create_simulator_app, get_simulator, run_simulator
from .clock import ManualClock
from .config import SimulatorConfig
from .core import Simulator
from .mp4 import tiny_mp4
from .store import Task

__all__ = [
    "ManualClock",
    "Simulator",
    "SimulatorConfig",
    "Task",
    "create_simulator_app",
    "get_simulator",
    "run_simulator",
    "tiny_mp4",
]
