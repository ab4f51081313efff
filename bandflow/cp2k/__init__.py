"""CP2K engine of the ``fast`` protocol (and CP2K steps of ``accurate``): input sets, makers, parsing, running.

Importing this package does not start CP2K; :func:`check_cp2k` checks the executable before any work.
"""

from bandflow.cp2k.jobs import Cp2kBulkHybridMaker, Cp2kSlabRelaxMaker, Cp2kSlabStaticMaker, gamma_supercell
from bandflow.cp2k.run import Cp2kRunError, check_cp2k, run_cp2k

__all__ = [
    "Cp2kBulkHybridMaker",
    "Cp2kRunError",
    "Cp2kSlabRelaxMaker",
    "Cp2kSlabStaticMaker",
    "check_cp2k",
    "gamma_supercell",
    "run_cp2k",
]
