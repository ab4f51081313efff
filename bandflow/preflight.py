"""Checks that run before any expensive work: engine present, bulks usable, surfaces to compute."""

from __future__ import annotations

from bandflow.bulk import BulkOxide, oxidation_states
from bandflow.errors import BandflowError
from bandflow.flows import BulkPlan, check_makers, plan_campaign
from bandflow.spec import CampaignSpec


def check_insulating(bulk: BulkOxide) -> None:
    """Reject bulks that cannot have a gap in a spin-restricted calculation.

    An odd electron count per primitive cell leaves a half-filled band (a metal without spin
    polarisation), and an oxide without a charge-balanced assignment of formal oxidation states has no
    closed-shell ionic limit. Both fail here, before a bulk hybrid calculation is spent on them; the
    bulk job itself still rejects a computed gap below 0.1 eV.
    """
    primitive = bulk.primitive()
    electrons = sum(site.specie.Z for site in primitive)
    if electrons % 2:
        raise BandflowError(f"{bulk.name}: odd number of electrons per primitive cell ({electrons}): "
                            "metallic without spin polarisation, no band gap to align")
    oxidation_states(bulk.structure)


def check_engine(engine: str) -> None:
    """The engine's executable must be present before anything is started."""
    if engine == "cp2k":
        from bandflow.cp2k import check_cp2k

        check_cp2k()


def uses_own_makers(spec: CampaignSpec) -> bool:
    """True when the spec names its own bulk and slab makers (bandflow's engine settings are then unused)."""
    return all(spec.engine_settings.get(step, {}).get("maker") for step in ("bulk", "slab"))


def check_campaign(spec: CampaignSpec, need_engine: bool = True) -> list[BulkPlan]:
    """Validate a campaign and return its plan (bulks and their nonpolar surfaces)."""
    if need_engine and not uses_own_makers(spec):
        check_engine(spec.engine)
    plans = plan_campaign(spec)
    for plan in plans:
        check_insulating(plan.bulk)
    check_makers(spec, plans)
    return plans


def unsupported_bulks(spec: CampaignSpec, plans: list[BulkPlan]) -> dict[str, str]:
    """Bulks of a CP2K campaign with an element that the protocol's basis/pseudopotential files lack.

    Their jobs fail with that reason (recorded, the rest of the campaign goes on); ``bandflow run`` says so
    before it starts, so a user is not surprised hours later. Empty for other engines or own makers.
    """
    if spec.engine != "cp2k" or uses_own_makers(spec):
        return {}
    from bandflow.cp2k.sets import kind_settings

    reasons: dict[str, str] = {}
    for plan in plans:
        for element in sorted({site.specie.symbol for site in plan.bulk.structure}):
            try:
                kind_settings(element, hybrid=True)
            except BandflowError as exc:
                reasons[plan.bulk.name] = str(exc)
                break
    return reasons
