"""The simulator: local upstreams that behave like the real feeds, for the demo and the tests."""

from pollerd.sim.files import Fault, FileHost, ServedFile, Version
from pollerd.sim.server import SimServer

__all__ = ["Fault", "FileHost", "ServedFile", "SimServer", "Version"]
