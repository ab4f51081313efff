"""VASP engine of the ``accurate`` protocol: atomate2 makers with bandflow's input sets and analysis jobs.

Importing this package imports atomate2's VASP modules (a few seconds); :mod:`bandflow.flows` imports it
only when a campaign uses VASP.
"""

from bandflow.vasp.jobs import (
    VaspBulkEdgesMaker,
    VaspBulkRelaxMaker,
    VaspSlabRelaxMaker,
    VaspSlabStaticMaker,
)

__all__ = ["VaspBulkEdgesMaker", "VaspBulkRelaxMaker", "VaspSlabRelaxMaker", "VaspSlabStaticMaker"]
