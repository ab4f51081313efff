"""Documents of the results store: computed surfaces, model predictions and trained models.

All energies are in eV. Absolute levels (``bulk_vbm``, ``vacuum_level_top``, ...) are on the zero of the
calculation they come from; ``ip`` and ``ea`` are differences and need no common zero. Structures are
pymatgen ``Structure.as_dict()`` dicts so documents stay plain JSON/BSON. See ``docs/schema.md``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal, TypeVar

from monty.json import jsanitize
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pymatgen.core import Composition, Element, Structure

from bandflow.errors import BandflowError

FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]
NonNegativeFiniteFloat = Annotated[float, Field(allow_inf_nan=False, ge=0)]
PositiveFiniteFloat = Annotated[float, Field(allow_inf_nan=False, gt=0)]
NonEmptyStr = Annotated[str, Field(min_length=1)]
MillerIndex = tuple[int, int, int]
DocT = TypeVar("DocT", bound=BaseModel)


def utc_now() -> datetime:
    """The current time in UTC, truncated to milliseconds (the resolution of BSON dates)."""
    return normalise_datetime(datetime.now(UTC))


def normalise_datetime(value: datetime) -> datetime:
    """Timezone-aware UTC at millisecond resolution; naive values (as stores return them) are UTC."""
    value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


def normalise_formula(formula: str) -> str:
    """Reduced formula of an oxide (``Mg2O2`` -> ``MgO``); ValueError if unreadable or oxygen-free."""
    try:
        composition = Composition(formula)
    except Exception as exc:  # pymatgen raises ValueError or others for garbage
        raise ValueError(f"cannot read the formula {formula!r}: {exc}") from None
    if len(composition) == 0:
        raise ValueError(f"empty formula {formula!r}")
    if not all(isinstance(el, Element) for el in composition.elements):
        raise ValueError(f"cannot read the formula {formula!r}: it names something that is not an element")
    if "O" not in {el.symbol for el in composition.elements}:
        raise ValueError(f"formula {formula!r} has no oxygen: bandflow stores oxide surfaces only")
    return composition.reduced_formula


def formula_chemsys(formula: str) -> str:
    """Chemical system of a formula, elements sorted alphabetically: ``MgAl2O4`` -> ``Al-Mg-O``."""
    return "-".join(sorted(el.symbol for el in Composition(formula).elements))


def normalise_chemsys(chemsys: str) -> str:
    """Sort the elements of a chemical system (``O-Mg`` -> ``Mg-O``); ValueError for unknown elements."""
    symbols = [part.strip() for part in chemsys.split("-")]
    if not all(Element.is_valid_symbol(symbol) for symbol in symbols):
        raise ValueError(f"cannot read the chemical system {chemsys!r} (expected element symbols like 'Mg-O')")
    return "-".join(sorted(set(symbols)))


def _json_plain(value: Any, field_name: str) -> Any:
    """``value`` with tuples/numpy/MSONable objects turned into plain JSON types (ValueError otherwise)."""
    try:
        return jsanitize(value, strict=True)
    except Exception:
        raise ValueError(f"{field_name} holds a value that cannot be stored as JSON") from None


def _structure_as_dict(value: Any, field_name: str) -> Any:
    if value is None:
        return None
    if isinstance(value, Structure):
        return _json_plain(value.as_dict(), field_name)
    if not isinstance(value, dict):
        raise ValueError(f"{field_name} must be a pymatgen Structure or its as_dict() dict")
    try:
        Structure.from_dict(value)
    except Exception as exc:
        raise ValueError(f"{field_name} is not a valid Structure dict: {exc}") from None
    return _json_plain(value, field_name)


class BandflowDocument(BaseModel):
    """Shared configuration: unknown fields are errors, values are re-validated on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    @field_validator("created_at", "updated_at", check_fields=False)
    @classmethod
    def _utc_milliseconds(cls, value: datetime) -> datetime:
        return normalise_datetime(value)

    @field_validator("miller_index", check_fields=False)
    @classmethod
    def _miller_not_zero(cls, value: MillerIndex) -> MillerIndex:
        if not any(value):
            raise ValueError("miller_index must not be (0, 0, 0)")
        return value

    @field_validator("formula", check_fields=False)
    @classmethod
    def _reduced_formula(cls, value: str) -> str:
        return normalise_formula(value)

    @field_validator("termination", mode="before", check_fields=False)
    @classmethod
    def _termination_label(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @field_validator("structure_unrelaxed", "structure_relaxed", mode="before", check_fields=False)
    @classmethod
    def _structure_dict(cls, value: Any, info) -> Any:
        return _structure_as_dict(value, info.field_name)

    @field_validator("extra", "hyperparameters", "normalisation", mode="before", check_fields=False)
    @classmethod
    def _plain_json(cls, value: Any, info) -> Any:
        return _json_plain(value, info.field_name)

    @model_validator(mode="after")
    def _composition_fields(self):
        """Fill chemsys / n_cation_species from the formula, or check them against it."""
        formula = getattr(self, "formula", None)
        if formula is None or "chemsys" not in type(self).model_fields:
            return self
        chemsys = formula_chemsys(formula)
        n_cations = len(chemsys.split("-")) - 1
        if self.chemsys is None:
            object.__setattr__(self, "chemsys", chemsys)
        elif normalise_chemsys(self.chemsys) != chemsys:
            raise ValueError(f"chemsys {self.chemsys!r} does not match formula {formula!r} ({chemsys})")
        else:
            object.__setattr__(self, "chemsys", chemsys)
        if self.n_cation_species is None:
            object.__setattr__(self, "n_cation_species", n_cations)
        elif self.n_cation_species != n_cations:
            raise ValueError(
                f"n_cation_species {self.n_cation_species} does not match formula {formula!r} ({n_cations})"
            )
        return self


class SurfaceDoc(BandflowDocument):
    """One computed surface: key (surface_id, protocol). Energies in eV."""

    surface_id: NonEmptyStr = Field(description="Surface identifier (bulk, Miller index, termination).")
    bulk_name: NonEmptyStr = Field(description="Bulk library name or structure file stem.")
    formula: NonEmptyStr = Field(description="Reduced formula of the bulk, e.g. 'MgO'.")
    chemsys: str | None = Field(None, description="Elements sorted and joined by '-', e.g. 'Mg-O'.")
    n_cation_species: int | None = Field(None, ge=1, description="Number of distinct non-oxygen elements.")
    spacegroup_symbol: str | None = Field(None, description="Bulk space group (Hermann-Mauguin).")
    spacegroup_number: int | None = Field(None, ge=1, le=230, description="Bulk space group number.")
    miller_index: MillerIndex = Field(description="Surface plane (h, k, l) of the conventional bulk cell.")
    termination: NonEmptyStr = Field("0", description="Termination label (index of the slab termination).")
    structure_unrelaxed: dict[str, Any] = Field(description="Slab before relaxation (Structure.as_dict()).")
    structure_relaxed: dict[str, Any] | None = Field(None, description="Slab after relaxation.")
    bulk_vbm: FiniteFloat | None = Field(None, description="Bulk valence band maximum (eV, bulk zero).")
    bulk_cbm: FiniteFloat | None = Field(None, description="Bulk conduction band minimum (eV, bulk zero).")
    bulk_gap: NonNegativeFiniteFloat | None = Field(None, description="Bulk band gap CBM - VBM (eV).")
    bulk_average_potential: FiniteFloat | None = Field(
        None, description="Cell-averaged electrostatic potential energy in the bulk (eV, bulk zero)."
    )
    vacuum_level_top: FiniteFloat | None = Field(None, description="Vacuum plateau above the slab (eV).")
    vacuum_level_bottom: FiniteFloat | None = Field(None, description="Vacuum plateau below the slab (eV).")
    slab_center_average: FiniteFloat | None = Field(
        None, description="Potential energy averaged over one bulk period at the slab centre (eV)."
    )
    potential_step: FiniteFloat | None = Field(None, description="Vacuum level - slab centre average (eV).")
    period: PositiveFiniteFloat | None = Field(
        None, description="Macroscopic-average window at the slab centre (Å): the interlayer repeat."
    )
    period_source: Literal["ideal slab", "atoms", "given"] | None = Field(
        None, description="Where the period came from: the ideal (unrelaxed) slab, the relaxed atoms, or the user."
    )
    center_variation: NonNegativeFiniteFloat | None = Field(
        None, description="Spread of the macroscopic average within half a period of the slab centre (eV); "
                          "large: no bulk-like interior."
    )
    ip: FiniteFloat | None = Field(None, gt=0, description="Ionization potential E_vac - E_VBM (eV).")
    ea: FiniteFloat | None = Field(None, description="Electron affinity E_vac - E_CBM (eV).")
    engine: NonEmptyStr = Field(description="DFT engine, e.g. 'cp2k' or 'vasp'.")
    functional_bulk: NonEmptyStr = Field(description="Functional of the bulk band edges, e.g. 'HSE06'.")
    functional_slab: NonEmptyStr = Field(description="Functional of the slab potential, e.g. 'PBE'.")
    protocol: NonEmptyStr = Field(description="bandflow protocol name, e.g. 'fast' or 'accurate'.")
    code_versions: dict[str, str] = Field(default_factory=dict, description="Package/engine -> version.")
    job_uuids: dict[str, str] = Field(default_factory=dict, description="Step name -> jobflow job uuid.")
    state: Literal["successful", "failed"] = Field("successful", description="Outcome of the workflow.")
    failure_reason: str | None = Field(None, description="One-line reason when state is 'failed'.")
    source: Literal["bandflow", "import"] = Field("bandflow", description="Computed here or imported.")
    created_at: datetime = Field(default_factory=utc_now, description="First insertion (UTC).")
    updated_at: datetime = Field(default_factory=utc_now, description="Last update (UTC).")
    extra: dict[str, Any] = Field(default_factory=dict, description="Free-form additional data.")

    @model_validator(mode="after")
    def _consistent_outcome(self):
        if self.state == "successful":
            if self.ip is None or self.ea is None:
                raise ValueError("a successful surface needs ip and ea")
            if self.ea > self.ip + 1e-6:
                raise ValueError(f"ea ({self.ea} eV) above ip ({self.ip} eV): IP - EA is the gap, never negative")
        elif not (self.failure_reason or "").strip():
            raise ValueError("a failed surface needs a failure_reason")
        if self.bulk_vbm is not None and self.bulk_cbm is not None and self.bulk_cbm < self.bulk_vbm - 1e-6:
            raise ValueError(f"bulk_cbm ({self.bulk_cbm} eV) below bulk_vbm ({self.bulk_vbm} eV)")
        return self


class PredictionDoc(BandflowDocument):
    """IP/EA predicted by a trained model for one surface: key (surface_id, model_id). Energies in eV."""

    surface_id: NonEmptyStr
    bulk_name: NonEmptyStr
    formula: NonEmptyStr
    chemsys: str | None = None
    n_cation_species: int | None = Field(None, ge=1)
    miller_index: MillerIndex
    termination: NonEmptyStr = "0"
    structure_unrelaxed: dict[str, Any]
    ip: FiniteFloat = Field(description="Predicted ionization potential (eV).")
    ea: FiniteFloat = Field(description="Predicted electron affinity (eV).")
    ip_std: NonNegativeFiniteFloat | None = Field(None, description="Uncertainty of ip (eV), if the model has one.")
    ea_std: NonNegativeFiniteFloat | None = Field(None, description="Uncertainty of ea (eV), if the model has one.")
    unseen_elements: list[str] = Field(
        default_factory=list, description="Elements of the slab absent from the model's training set (extrapolated).")
    model_id: NonEmptyStr
    model_version: int = Field(ge=1)
    code_version: NonEmptyStr = Field(description="bandflow version that made the prediction.")
    created_at: datetime = Field(default_factory=utc_now)


class ModelDoc(BandflowDocument):
    """A trained model; its weights live in the store's weights collection under ``weights_key``.

    ``model_id`` and ``version`` are assigned by ``BandflowStore.save_model`` when left empty.
    """

    model_id: str | None = Field(None, min_length=1, description="Unique id; default '<name>-v<version>'.")
    version: int | None = Field(None, ge=1, description="Per-name version, 1, 2, ... (set on save).")
    name: NonEmptyStr = Field(description="Model family name, e.g. 'lsoap-ipea'.")
    descriptor: Literal["lsoap", "soap"]
    hyperparameters: dict[str, Any] = Field(default_factory=dict)
    normalisation: dict[str, Any] = Field(default_factory=dict, description="Target/feature scaling (eV).")
    training_surface_ids: list[str] = Field(default_factory=list)
    metrics: dict[str, FiniteFloat] = Field(
        default_factory=dict, description="<subset>_<target>_<metric>, e.g. {'test_ip_mae': 0.21} (eV).")
    parent_model_id: str | None = Field(None, description="Model this one was fine-tuned from.")
    code_version: NonEmptyStr
    created_at: datetime = Field(default_factory=utc_now)
    weights_key: str | None = Field(None, description="Key of the weights in the weights store (set on save).")
    weights_sha256: str | None = Field(None, description="SHA-256 of the weights bytes (set on save).")
    weights_size: int | None = Field(None, ge=0, description="Size of the weights in bytes (set on save).")



def validate_document(model: type[DocT], data: DocT | dict[str, Any]) -> DocT:
    """``data`` as a ``model`` instance; a BandflowError naming the first bad field if it is invalid."""
    if isinstance(data, model):
        return data
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "document"
        n_more = exc.error_count() - 1
        more = f" (and {n_more} more problem{'s' if n_more > 1 else ''})" if n_more else ""
        raise BandflowError(f"invalid {model.__name__}: {where}: {first['msg']}{more}") from None
