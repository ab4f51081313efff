"""Campaign specifications: the ``workflows/*.yaml`` files that ``bandflow run`` and ``submit`` take."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from bandflow.errors import BandflowError
from bandflow.protocols import Engine, Protocol, get_protocol


class BulkSelection(BaseModel):
    """One bulk of a campaign, with an optional per-bulk Miller index limit and band-edge settings."""

    model_config = ConfigDict(extra="forbid")

    bulk: str
    max_index: int | None = Field(default=None, ge=1, le=3)
    bulk_settings: dict[str, Any] = Field(
        default_factory=dict,
        description="Settings of this bulk's band-edge maker, over the spec's engine_settings.bulk (e.g. a "
                    "looser exchange screening for one costly bulk). They change the settings key of this "
                    "bulk's band-edge and alignment jobs only; its slab jobs are shared.")


class CampaignSpec(BaseModel):
    """Which bulks, which surfaces, which protocol and engine settings."""

    model_config = ConfigDict(extra="forbid")

    name: str
    bulks: list[BulkSelection] = Field(min_length=1)
    max_index: int = Field(default=1, ge=1, le=3)
    protocol: str = "fast"
    engine: Engine = "cp2k"
    min_thickness: float | None = Field(default=None, gt=0)
    vacuum: float | None = Field(default=None, gt=0)
    max_atoms: int | None = Field(default=None, gt=0, description="Skip slabs with more atoms than this.")
    engine_settings: dict[str, Any] = Field(default_factory=dict)

    @field_validator("bulks", mode="before")
    @classmethod
    def _bulk_strings(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [{"bulk": v} if isinstance(v, str) else v for v in value]
        return value

    @property
    def protocol_settings(self) -> Protocol:
        base = get_protocol(self.protocol, self.engine)
        updates = {k: v for k, v in {"min_thickness": self.min_thickness, "vacuum": self.vacuum}.items() if v}
        return base.model_copy(update=updates)


def load_spec(path: str | Path) -> CampaignSpec:
    """Read and validate a campaign YAML; one clear error line for anything wrong."""
    path = Path(path)
    if not path.is_file():
        raise BandflowError(f"spec file not found: {path}")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise BandflowError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(raw, dict):
        raise BandflowError(f"{path}: expected a mapping with 'name' and 'bulks'")
    raw.setdefault("name", path.stem)
    try:
        spec = CampaignSpec.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise BandflowError(f"{path}: {where}: {err['msg']}") from None
    spec.protocol_settings  # noqa: B018 - validates the protocol/engine pair early
    return spec


def select_bulks(spec: CampaignSpec, names: Sequence[str]) -> CampaignSpec:
    """``spec`` restricted to the named bulks, each with its own selection (Miller index) kept; no names keep
    them all. Several runners can so share one campaign on disjoint bulks, each writing the documents of the
    whole campaign's name."""
    if not names:
        return spec
    known = [selection.bulk for selection in spec.bulks]
    unknown = [name for name in names if name not in known]
    if unknown:
        raise BandflowError(f"{', '.join(unknown)}: not a bulk of campaign {spec.name!r} (its bulks: "
                            f"{', '.join(known)})")
    return spec.model_copy(update={"bulks": [s for s in spec.bulks if s.bulk in names]})
