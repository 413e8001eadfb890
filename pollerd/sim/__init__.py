"""The simulator: local upstreams that behave like the real feeds, for the demo and the tests."""

from pollerd.sim.ckan import CkanApi, PackageResource
from pollerd.sim.files import FileHost, ServedFile, Version
from pollerd.sim.host import Fault, SimHost
from pollerd.sim.server import SimServer

__all__ = ["CkanApi", "Fault", "FileHost", "PackageResource", "ServedFile", "SimHost", "SimServer", "Version"]
