"""Named calculation protocols. The protocol name is recorded in every stored document.

``fast``      CHGNet slab relaxation + CP2K PBE slab potential + CP2K HSE06 (ADMM, Γ-only supercell) bulk.
``accurate``  DFT relaxations and converged settings: VASP (PBEsol relax, HSE06 or dielectric-dependent
              hybrid bulk, LVHAR slab static with dipole correction) or CP2K (GEO_OPT + PBE slab, HSE06 bulk).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from bandflow.errors import BandflowError

Engine = Literal["cp2k", "vasp"]

#: Γ-only minus k-mesh PBE energy per atom (eV/atom) of a bulk hybrid cell above which its band edges are not
#: converged; the CP2K bulk step grows its Γ cell until below it. CaO VBM: 16 atoms, 0.18 eV/atom, 0.30 eV
#: below the 54-atom value at 0.018 eV/atom; PbO VBM: 16 atoms, 0.063 eV/atom, 0.17 eV below the 32-atom
#: value at 0.007 eV/atom (docs/engines.md).
MAX_GAMMA_SAMPLING_ERROR = 0.03


class Protocol(BaseModel):
    """How each step of the flow is computed."""

    model_config = ConfigDict(frozen=True)

    name: str
    engine: Engine
    slab_relax: Literal["chgnet", "dft", "none"]
    bulk_functional: str
    slab_functional: str
    min_thickness: float = 10.0
    vacuum: float = 15.0


PROTOCOLS: dict[tuple[str, str], Protocol] = {
    ("fast", "cp2k"): Protocol(
        name="fast", engine="cp2k", slab_relax="chgnet", bulk_functional="HSE06", slab_functional="PBE",
        min_thickness=8.0, vacuum=12.0,
    ),
    ("accurate", "cp2k"): Protocol(
        name="accurate", engine="cp2k", slab_relax="dft", bulk_functional="HSE06", slab_functional="PBE",
        min_thickness=12.0, vacuum=15.0,
    ),
    ("accurate", "vasp"): Protocol(
        name="accurate", engine="vasp", slab_relax="dft", bulk_functional="HSE06", slab_functional="PBEsol",
        min_thickness=12.0, vacuum=15.0,
    ),
}


def get_protocol(name: str, engine: str = "cp2k") -> Protocol:
    """Look up a protocol by name and engine; one clear error for unknown combinations."""
    try:
        return PROTOCOLS[(name, engine)]
    except KeyError:
        known = ", ".join(f"{n}/{e}" for n, e in PROTOCOLS)
        raise BandflowError(f"unknown protocol '{name}' for engine '{engine}' (known: {known})") from None
