"""Electrostatic-potential analysis of slab calculations: planar and macroscopic averages, vacuum levels,
the bulk-like average at the slab centre, and the IP/EA alignment formula.

Units and signs (see docs/method.md):

* Every potential here is the electrostatic potential **energy of an electron** in eV, the quantity that
  sits on the same energy axis as the Kohn–Sham eigenvalues of the same calculation: it is high in the
  vacuum and deep at the nuclei.
* VASP LOCPOT (written with ``LVHAR = .TRUE.``) holds exactly that quantity, in eV, with the cell average
  at zero. It is read with pymatgen's :class:`~pymatgen.io.vasp.outputs.Locpot`.
* CP2K ``*-v_hartree-*.cube`` (``&V_HARTREE_CUBE``) holds the same quantity in Hartree (the Hartree
  potential of electrons plus Gaussian cores, negative at the nuclei), with the cell average at zero and the
  same zero as the eigenvalues. It is converted to eV; no sign flip is needed. Cube lengths are in bohr
  (a negative voxel count means Å, as in the Gaussian format) and are converted to Å.

Coordinates along the surface normal are in Å, measured from the plane through the cell origin spanned
by the two other lattice vectors, so non-orthogonal cells work.
"""

from __future__ import annotations

import math
import warnings
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from monty.io import zopen
from pymatgen.core import Element, Lattice, Structure
from pymatgen.core.units import Ha_to_eV, bohr_to_ang
from pymatgen.optimization.fast_parser import parse_n_doubles

from bandflow.errors import BandflowError

AXIS_NAMES = {"a": 0, "b": 1, "c": 2}
PERIOD_TOLERANCE = 0.3  # Å: how far a relaxed atom may sit from its bulk-repeat image in period detection
#: Å: the same for an ideal (unrelaxed) slab, whose atoms sit on their bulk repeats to rounding error. The
#: loose tolerance can pass a near-repeat first: MgTiO3 (110) gives 2.40 Å with it, 2.53 Å (the true one) here.
IDEAL_PERIOD_TOLERANCE = 0.02


@dataclass
class PotentialGrid:
    """Electrostatic potential energy of an electron on the FFT grid of one calculation.

    ``data[i, j, k]`` is the value (eV) at fractional coordinates ``(i/n0, j/n1, k/n2)``; ``lattice``
    holds the three lattice vectors (Å) as rows; ``structure`` the atoms when the file has them;
    ``source`` where the grid came from (a path, or a description).
    """

    data: np.ndarray
    lattice: np.ndarray
    structure: Structure | None
    source: str


@dataclass
class PotentialAnalysis:
    """Vacuum levels and the bulk-like slab-centre average of one slab potential (all energies in eV).

    ``z`` (Å), ``planar`` and ``macroscopic`` are the profiles along the surface normal. The top face is
    the one at larger ``z`` (its vacuum plateau lies just above the topmost atom); ``slab_bounds`` are
    the outermost atomic planes (Å, the top may exceed the cell length when the slab wraps around it).
    """

    vacuum_level_top: float
    vacuum_level_bottom: float
    slab_center_average: float
    potential_step: float
    period: float | tuple[float, ...]
    axis: int
    z: np.ndarray
    planar: np.ndarray
    macroscopic: np.ndarray
    slab_center: float
    slab_bounds: tuple[float, float]
    vacuum_top_range: tuple[float, float]
    vacuum_bottom_range: tuple[float, float]
    center_variation: float
    plateau_tolerance: float
    source: str
    period_source: Literal["given", "atoms"] = "atoms"

    @property
    def vacuum_level(self) -> float:
        """Mean of the two vacuum levels (eV); they agree for a symmetric slab without dipole correction."""
        return 0.5 * (self.vacuum_level_top + self.vacuum_level_bottom)

    def to_dict(self, profile: bool = False) -> dict[str, Any]:
        """Plain JSON-ready dict; ``profile=True`` adds the ``z``, ``planar`` and ``macroscopic`` arrays."""
        out: dict[str, Any] = {
            "vacuum_level_top": self.vacuum_level_top,
            "vacuum_level_bottom": self.vacuum_level_bottom,
            "vacuum_level": self.vacuum_level,
            "slab_center_average": self.slab_center_average,
            "potential_step": self.potential_step,
            "period": list(self.period) if isinstance(self.period, tuple) else self.period,
            "period_source": self.period_source,
            "axis": "abc"[self.axis],
            "slab_center": self.slab_center,
            "slab_bounds": list(self.slab_bounds),
            "vacuum_top_range": list(self.vacuum_top_range),
            "vacuum_bottom_range": list(self.vacuum_bottom_range),
            "center_variation": self.center_variation,
            "plateau_tolerance": self.plateau_tolerance,
            "source": self.source,
        }
        if profile:
            out["z"] = self.z.tolist()
            out["planar"] = self.planar.tolist()
            out["macroscopic"] = self.macroscopic.tolist()
        return out


# ----------------------------------------------------------------------------------------------- reading


def read_potential(path: str | Path) -> PotentialGrid:
    """Read a VASP LOCPOT (or any file in VASP's volumetric format) or a Gaussian/CP2K cube file.

    The format is chosen by name (``*.cube``, ``*.cub``, optionally compressed) or else by content.
    Returns the potential energy of an electron in eV (see the module docstring for conventions).
    """
    path = Path(path)
    if not path.is_file():
        raise BandflowError(f"potential file not found: {path}")
    if _looks_like_cube(path):
        return read_cube(path)
    return _read_vasp_volumetric(path)


def _looks_like_cube(path: Path) -> bool:
    suffixes = [s.lower() for s in path.suffixes]
    if ".cube" in suffixes or ".cub" in suffixes:
        return True
    # By content: line 3 of a cube is "natoms x0 y0 z0" (int + 3 floats); in a POSCAR it is a lattice vector.
    try:
        with zopen(path, mode="rt", encoding="utf-8", errors="replace") as file:
            head = [file.readline() for _ in range(6)]
    except OSError:
        return False
    try:
        rows = [head[i].split() for i in range(2, 6)]
        return all(len(row) == 4 for row in rows) and all(_is_int(row[0]) for row in rows)
    except IndexError:
        return False


def _is_int(token: str) -> bool:
    try:
        int(token)
    except ValueError:
        return False
    return True


def _read_vasp_volumetric(path: Path) -> PotentialGrid:
    from pymatgen.io.vasp.outputs import Locpot

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            locpot = Locpot.from_file(path)
    except Exception as exc:  # pymatgen raises anything from ValueError to IndexError on a garbled file
        raise BandflowError(f"cannot read {path} as a VASP LOCPOT: {type(exc).__name__}: {exc}") from exc
    blocks = dict(locpot.data)
    if "spin_up" in blocks and "spin_down" in blocks:
        # A spin-polarised LVTOT file holds the two spin potentials; their mean keeps the common
        # electrostatic part. An LVHAR file (the recommended one) has a single block.
        data = 0.5 * (np.asarray(blocks["spin_up"]) + np.asarray(blocks["spin_down"]))
    else:
        data = np.asarray(blocks[locpot.data_key])
    return _checked_grid(np.asarray(data, dtype=float), locpot.structure.lattice.matrix, locpot.structure, path)


def read_cube(path: str | Path) -> PotentialGrid:
    """Read a Gaussian-format cube file as written by CP2K's ``V_HARTREE_CUBE`` (Hartree → eV, bohr → Å).

    Written here rather than using pymatgen's ``VolumetricData.from_cube`` because that reader is slow on
    the 10^7-point grids of slab calculations: it splits the file into lines, joins them again and parses
    the text with ``np.fromstring`` (about 8x slower than the compiled parser used here, pymatgen's own
    ``parse_n_doubles`` behind its LOCPOT reader; benchmarks/potential_speed.py times both readers). It
    also ignores Å-unit cubes and the extra header line of cubes with a negative atom count.
    """
    path = Path(path)
    if not path.is_file():
        raise BandflowError(f"potential file not found: {path}")
    try:
        with zopen(path, mode="rb") as file:
            file.readline()
            file.readline()  # two comment lines
            n_atoms_line = file.readline().split()
            n_atoms = int(n_atoms_line[0])
            origin = np.array(n_atoms_line[1:4], dtype=float)
            counts, voxels = [], []
            for _ in range(3):
                tokens = file.readline().split()
                counts.append(int(tokens[0]))
                voxels.append(np.array(tokens[1:4], dtype=float))
            atoms = [file.readline().split() for _ in range(abs(n_atoms))]
            if n_atoms < 0:
                file.readline()  # data-set ids line of multi-value cubes
            if len(origin) != 3 or any(len(v) != 3 for v in voxels) or 0 in counts:
                raise ValueError("grid lines need a count and three numbers")
            shape = tuple(abs(n) for n in counts)
            values = np.empty(math.prod(shape))
            parsed = parse_n_doubles(file, values, values.size)  # stops at the first non-number
            trailing = file.read(4096).strip()
    except (ValueError, IndexError, OSError, UnicodeDecodeError) as exc:
        raise BandflowError(f"cannot read {path} as a cube file: bad header ({exc})") from exc
    if parsed != values.size or trailing:
        found = f"{parsed} numbers" + (" before something else" if parsed < values.size else " and more")
        raise BandflowError(
            f"cannot read {path} as a cube file: {found}, expected {values.size} = "
            f"{shape[0]}x{shape[1]}x{shape[2]} grid values (truncated, garbled or several data sets)"
        )
    # Gaussian convention: a positive voxel count means bohr, a negative one Å.
    to_ang = np.array([bohr_to_ang if n > 0 else 1.0 for n in counts])
    lattice = np.array(voxels) * np.array(shape)[:, None] * to_ang[:, None]
    origin_ang = origin * to_ang[0]
    structure = _cube_structure(path, atoms, lattice, origin_ang, to_ang[0])
    return _checked_grid(values.reshape(shape) * Ha_to_eV, lattice, structure, path)


def _cube_structure(
    path: Path, atoms: list[list[bytes]], lattice: np.ndarray, origin: np.ndarray, to_ang: float
) -> Structure | None:
    species, coords = [], []
    try:
        for tokens in atoms:
            z_number = round(float(tokens[0]))
            if z_number == 0:  # ghost atoms carry no nucleus
                continue
            species.append(Element.from_Z(z_number))
            coords.append(np.array(tokens[2:5], dtype=float) * to_ang - origin)
    except (ValueError, IndexError) as exc:
        raise BandflowError(f"cannot read {path} as a cube file: bad atom line ({exc})") from exc
    if not species:
        return None
    return Structure(Lattice(lattice), species, coords, coords_are_cartesian=True)


def _checked_grid(data: np.ndarray, lattice: np.ndarray, structure: Structure | None, path: Path) -> PotentialGrid:
    if data.ndim != 3 or min(data.shape) < 1:
        raise BandflowError(f"{path}: potential grid has shape {data.shape}, expected three dimensions")
    if not np.all(np.isfinite(data)):
        raise BandflowError(f"{path}: potential grid contains NaN or infinite values")
    if abs(np.linalg.det(lattice)) < 1e-8:
        raise BandflowError(f"{path}: lattice vectors are degenerate (zero cell volume)")
    return PotentialGrid(data=data, lattice=np.asarray(lattice, dtype=float), structure=structure, source=str(path))


# ---------------------------------------------------------------------------------------------- profiles


def axis_index(axis: int | str) -> int:
    """0, 1, 2 or 'a', 'b', 'c' (any case) → lattice-vector index."""
    if isinstance(axis, str) and axis.strip().lower() in AXIS_NAMES:
        return AXIS_NAMES[axis.strip().lower()]
    if isinstance(axis, str) and axis.strip() in {"0", "1", "2"}:
        return int(axis)
    if isinstance(axis, int | np.integer) and 0 <= int(axis) <= 2:
        return int(axis)
    raise BandflowError(f"axis must be 0, 1, 2 or a, b, c; got {axis!r}")


def plane_spacing(lattice: np.ndarray, axis: int) -> float:
    """Distance (Å) between the lattice planes spanned by the two other vectors: volume / |cross product|."""
    lattice = np.asarray(lattice, dtype=float)
    others = [lattice[i] for i in range(3) if i != axis]
    return float(abs(np.linalg.det(lattice)) / np.linalg.norm(np.cross(*others)))


def planar_average(grid: PotentialGrid, axis: int | str = 2) -> tuple[np.ndarray, np.ndarray]:
    """Average over the lattice planes normal to ``axis``.

    Returns ``(z, v)``: ``z`` (Å) the distance of each grid plane along the normal from the cell origin
    (spacing = plane spacing / number of grid planes), ``v`` the planar average (eV).
    """
    ax = axis_index(axis)
    n = grid.data.shape[ax]
    planar = grid.data.mean(axis=tuple(i for i in range(3) if i != ax))
    z = np.arange(n) * (plane_spacing(grid.lattice, ax) / n)
    return z, planar


def macroscopic_average(z: np.ndarray, v: np.ndarray, periods: float | Sequence[float]) -> np.ndarray:
    """Running box average of a periodic profile over each period in turn (Baldereschi's macroscopic average).

    ``z`` must be the uniform grid ``0, h, 2h, ...`` of one cell (length ``len(z) * h``), as returned by
    :func:`planar_average`. Each box average integrates the piecewise-linear interpolant of the profile
    exactly over ``[z - p/2, z + p/2]`` with periodic wrap, so a ripple of period ``p`` is removed exactly
    when ``p`` is a multiple of the grid spacing (and to O(h²) otherwise). Two periods are used for
    interfaces of two materials.
    """
    z = np.asarray(z, dtype=float)
    v = np.asarray(v, dtype=float)
    spacing, length = _grid_spacing(z, v)
    result = v
    for period in _period_list(periods, length):
        result = _box_average(result, spacing, period, z)
    return result


def _grid_spacing(z: np.ndarray, v: np.ndarray) -> tuple[float, float]:
    if z.ndim != 1 or v.shape != z.shape or z.size < 2:
        raise BandflowError("profile must be two 1-D arrays of equal length (at least 2 points)")
    spacing = float(z[1] - z[0])
    if spacing <= 0 or not np.allclose(np.diff(z), spacing, rtol=1e-6, atol=1e-9) or abs(z[0]) > 1e-9:
        raise BandflowError("profile coordinates must be a uniform increasing grid starting at 0")
    return spacing, spacing * z.size


def _period_list(periods: float | Sequence[float], length: float) -> list[float]:
    values = [periods] if np.isscalar(periods) else list(periods)  # type: ignore[arg-type]
    if not values:
        raise BandflowError("at least one averaging period is needed")
    out = []
    for p in values:
        p = float(p)  # type: ignore[arg-type]
        if not math.isfinite(p) or p <= 0 or p > length:
            raise BandflowError(f"averaging period must be positive and at most the cell length {length:.3f} Å; got {p}")
        out.append(p)
    return out


def _box_average(v: np.ndarray, spacing: float, width: float, at: np.ndarray | float) -> np.ndarray:
    """Mean of the periodic linear interpolant of ``v`` over ``[at - width/2, at + width/2]``."""
    n = v.size
    closed = np.append(v, v[0])
    cumulative = np.concatenate([[0.0], np.cumsum(0.5 * spacing * (closed[:-1] + closed[1:]))])
    total = cumulative[-1]
    length = n * spacing

    def integral_to(t: np.ndarray) -> np.ndarray:
        turns = np.floor(t / length)
        r = (t - turns * length) / spacing
        k = np.minimum(r.astype(int), n - 1)
        s = r - k
        return turns * total + cumulative[k] + spacing * (closed[k] * s + 0.5 * (closed[k + 1] - closed[k]) * s**2)

    at = np.asarray(at, dtype=float)
    return (integral_to(at + 0.5 * width) - integral_to(at - 0.5 * width)) / width


# ------------------------------------------------------------------------------------------- slab geometry


def _atom_heights(structure: Structure, axis: int, length: float) -> np.ndarray:
    return np.mod(structure.frac_coords[:, axis], 1.0) * length


def _slab_bounds_from_atoms(heights: np.ndarray, length: float) -> tuple[float, float]:
    """(bottom, top) of the slab, unwrapped so that bottom <= top < bottom + length: the vacuum is the
    largest gap between consecutive atomic heights (periodically)."""
    z = np.sort(heights)
    gaps = np.diff(np.append(z, z[0] + length))
    widest = int(np.argmax(gaps))
    bottom = z[(widest + 1) % z.size]
    top = z[widest]
    if top < bottom:
        top += length
    return float(bottom), float(top)


def _slab_bounds_from_profile(z: np.ndarray, planar: np.ndarray, length: float) -> tuple[float, float]:
    """Without atoms: the vacuum is the longest periodic run where the profile is in its upper half."""
    high = planar >= 0.5 * (planar.max() + planar.mean())
    if high.all() or not high.any():
        raise BandflowError("cannot locate a vacuum region in a flat profile and the file has no atoms")
    n = planar.size
    start = int(np.argmin(high))  # a low point: runs are contiguous from here on, wrapped
    best_len, best_start, run = 0, 0, 0
    for offset in range(1, n + 1):
        k = (start + offset) % n
        run = run + 1 if high[k] else 0
        if run > best_len:
            best_len, best_start = run, start + offset - run + 1
    spacing = z[1] - z[0]
    top = (best_start - 1) * spacing  # last low point before the vacuum run
    bottom = (best_start + best_len) * spacing  # first low point after it
    bottom_wrapped = bottom % length
    top_unwrapped = top % length
    if top_unwrapped < bottom_wrapped:
        top_unwrapped += length
    return float(bottom_wrapped), float(top_unwrapped)


def detect_period(structure: Structure, axis: int | str = 2, tolerance: float = PERIOD_TOLERANCE) -> float:
    """Interlayer repeat distance (Å) of a slab along the normal to ``axis``, from its atom positions.

    The smallest shift ``t`` that maps, for every species, at least 3/4 of the atoms (those whose image
    still lies inside the slab) onto an atom of the same species within ``tolerance``. Only heights
    matter because the planar average does not see in-plane shifts between layers.
    """
    ax = axis_index(axis)
    length = plane_spacing(structure.lattice.matrix, ax)
    heights = _atom_heights(structure, ax, length)
    bottom, _ = _slab_bounds_from_atoms(heights, length)
    heights = np.where(heights < bottom - 1e-9, heights + length, heights)
    top = heights.max()
    species = np.array([site.species_string for site in structure])
    by_species = {name: np.sort(heights[species == name]) for name in np.unique(species)}
    candidates = np.unique(
        np.round(np.concatenate([(h[None, :] - h[:, None]).ravel() for h in by_species.values()]), 2)
    )
    for shift in candidates[candidates >= max(0.5, 2 * tolerance)]:
        fractions, matched_shifts = [], []
        for h in by_species.values():
            inside = h[h + shift <= top + tolerance]
            if inside.size == 0:  # no atom of this species has an image inside the slab: no evidence
                continue
            offsets = h[None, :] - inside[:, None]
            nearest = offsets[np.arange(inside.size), np.abs(offsets - shift).argmin(axis=1)]
            matched = np.abs(nearest - shift) <= tolerance
            fractions.append(float(matched.mean()))
            matched_shifts.append(nearest[matched])
        if fractions and min(fractions) >= 0.75:
            # The first passing candidate may sit up to `tolerance` off in a relaxed slab: take the median
            # of the actual atom-to-image shifts instead.
            return float(np.median(np.concatenate(matched_shifts)))
    raise BandflowError(
        f"cannot detect the interlayer period from the atoms of {structure.formula}: no layer repeats "
        "along the normal; give the period (Å) explicitly"
    )


# ------------------------------------------------------------------------------------------------ analysis


def analyze_potential(
    source: str | Path | PotentialGrid,
    axis: int | str = 2,
    period: float | Sequence[float] | None = None,
    plateau_tolerance: float = 0.02,
    min_plateau_width: float = 1.5,
) -> PotentialAnalysis:
    """Vacuum levels of both faces and the bulk-like average at the centre of a slab.

    * The slab spans the outermost atoms along the normal; the vacuum is the gap beyond them (without
      atoms: the longest high stretch of the profile).
    * Each vacuum level is the mean of the planar average over the middle half of the plateau: the longest
      stretch of the vacuum, at least ``min_plateau_width`` Å wide, over which the planar average varies by
      at most ``plateau_tolerance`` eV (the ranges averaged are ``vacuum_*_range``). The top face
      takes the plateau nearest to it, the bottom face the one nearest to it: they differ only with a
      dipole correction (a step in the vacuum). No such stretch raises :class:`BandflowError`.
    * ``period`` (Å; one value, or two for a double average) is the interlayer spacing used for the
      macroscopic average; by default it is detected from the atoms (:func:`detect_period`).
    * ``slab_center_average`` is the macroscopic average at the slab centre, i.e. the planar average
      averaged over one period centred between the outermost atoms.
    """
    grid = source if isinstance(source, PotentialGrid) else read_potential(source)
    ax = axis_index(axis)
    if not (math.isfinite(plateau_tolerance) and plateau_tolerance > 0):
        raise BandflowError(f"plateau tolerance must be a positive number of eV; got {plateau_tolerance}")
    z, planar = planar_average(grid, ax)
    spacing = plane_spacing(grid.lattice, ax) / z.size
    length = spacing * z.size
    has_atoms = grid.structure is not None and len(grid.structure) > 0
    if has_atoms:
        bottom, top = _slab_bounds_from_atoms(_atom_heights(grid.structure, ax, length), length)
    else:
        bottom, top = _slab_bounds_from_profile(z, planar, length)

    detected = period is None
    if detected:
        if not has_atoms:
            raise BandflowError(f"{grid.source} has no atoms to detect the interlayer period from; give the period")
        period = detect_period(grid.structure, ax)
    periods = _period_list(period, length)
    macro = macroscopic_average(z, planar, periods)

    plateaus = _vacuum_plateaus(planar, spacing, top, bottom + length, plateau_tolerance, min_plateau_width, grid.source)
    (top_level, top_range), (bottom_level, bottom_range) = plateaus

    center = ((bottom + top) / 2) % length
    center_average, center_variation = centre_average(z, planar, center, periods)

    return PotentialAnalysis(
        vacuum_level_top=top_level,
        vacuum_level_bottom=bottom_level,
        slab_center_average=center_average,
        potential_step=0.5 * (top_level + bottom_level) - center_average,
        period=periods[0] if len(periods) == 1 else tuple(periods),
        axis=ax,
        z=z,
        planar=planar,
        macroscopic=macro,
        slab_center=float(center),
        slab_bounds=(bottom, top),
        vacuum_top_range=top_range,
        vacuum_bottom_range=bottom_range,
        center_variation=center_variation,
        plateau_tolerance=float(plateau_tolerance),
        source=grid.source,
        period_source="atoms" if detected else "given",
    )


def centre_average(z: np.ndarray, planar: np.ndarray, centre: float, periods: float | Sequence[float]
                   ) -> tuple[float, float]:
    """Macroscopic average of a planar profile at ``centre`` and its variation within ± half the (last)
    period of it (eV): a large variation means the slab has no bulk-like interior at that period."""
    z, planar = np.asarray(z, dtype=float), np.asarray(planar, dtype=float)
    spacing, length = _grid_spacing(z, planar)
    periods = _period_list(periods, length)
    smoothed = planar
    for p in periods[:-1]:
        smoothed = _box_average(smoothed, spacing, p, z)
    average = float(_box_average(smoothed, spacing, periods[-1], centre))
    around = np.linspace(centre - periods[-1] / 2, centre + periods[-1] / 2, 21)
    values = _box_average(smoothed, spacing, periods[-1], around)
    return average, float(values.max() - values.min())


def _vacuum_plateaus(
    planar: np.ndarray,
    spacing: float,
    gap_start: float,
    gap_end: float,
    tolerance: float,
    min_width: float,
    source: str,
) -> tuple[tuple[float, tuple[float, float]], tuple[float, tuple[float, float]]]:
    """((top level, (z0, z1)), (bottom level, (z0, z1))) from the vacuum gap ``(gap_start, gap_end)`` (Å,
    unwrapped: the top surface is at ``gap_start``, the bottom one at ``gap_end``)."""
    n = planar.size
    length = n * spacing
    first = math.floor(gap_start / spacing) + 1
    last = math.ceil(gap_end / spacing) - 1
    gap_width = gap_end - gap_start
    if gap_width < min_width or last - first < 1:
        raise BandflowError(
            f"no vacuum plateau in {source}: the vacuum between the outermost atoms is only {gap_width:.2f} Å "
            f"(need at least {min_width} Å of flat potential)"
        )
    indices = np.arange(first, last + 1)
    values = planar[indices % n]
    windows = _flat_windows(values, tolerance, max(1, math.ceil(min_width / spacing - 1e-9)))
    if not windows:
        raise BandflowError(
            f"no flat vacuum plateau in {source}: over the {gap_width:.2f} Å of vacuum the planar average never "
            f"stays within {tolerance} eV over {min_width} Å (vacuum too thin or not converged; or raise the "
            "plateau tolerance if this is noise)"
        )
    groups = _overlapping_groups(windows)
    chosen = [max(groups[0], key=lambda w: w[1] - w[0]), max(groups[-1], key=lambda w: w[1] - w[0])]
    out = []
    for window_start, window_stop in chosen:
        # Average over the middle half: the window's ends may reach into the tail of the approach to the
        # vacuum level (up to `tolerance` off), which would bias a mean over the whole window.
        quarter = (window_stop - window_start) // 4
        start, stop = window_start + quarter, window_stop - quarter
        level = float(values[start : stop + 1].mean())
        z0 = (indices[start] * spacing) % length
        z1 = (indices[stop] * spacing) % length
        out.append((level, (float(z0), float(z1))))
    return out[0], out[1]


def _flat_windows(values: np.ndarray, tolerance: float, min_steps: int) -> list[tuple[int, int]]:
    """Maximal index windows ``[i, j]`` with ``max - min <= tolerance`` and ``j - i >= min_steps``.

    Two-pointer sweep with monotone deques (O(n)); written here because numpy has no sliding max/min of
    variable width.
    """
    windows: list[tuple[int, int]] = []
    high: deque[int] = deque()
    low: deque[int] = deque()
    start = 0
    for end, value in enumerate(values):
        while high and values[high[-1]] <= value:
            high.pop()
        high.append(end)
        while low and values[low[-1]] >= value:
            low.pop()
        low.append(end)
        while values[high[0]] - values[low[0]] > tolerance:
            if end - 1 - start >= min_steps and (not windows or windows[-1][1] < end - 1):
                windows.append((start, end - 1))
            start += 1
            if high[0] < start:
                high.popleft()
            if low[0] < start:
                low.popleft()
    last = values.size - 1
    if last - start >= min_steps and (not windows or windows[-1][1] < last):
        windows.append((start, last))
    return windows


def _overlapping_groups(windows: list[tuple[int, int]]) -> list[list[tuple[int, int]]]:
    groups: list[list[tuple[int, int]]] = [[windows[0]]]
    for window in windows[1:]:
        if window[0] <= max(w[1] for w in groups[-1]):
            groups[-1].append(window)
        else:
            groups.append([window])
    return groups


def align(
    vacuum_level: float, slab_center_average: float, vbm: float, cbm: float, bulk_average: float = 0.0
) -> tuple[float, float]:
    """Ionization potential and electron affinity (eV) by the bulk + slab alignment.

    ``IP = (V_vac − V̄_centre) − (E_VBM − V̄_bulk)`` and ``EA = IP − (E_CBM − E_VBM)``, where ``V_vac`` and
    ``V̄_centre`` come from the slab potential, and ``E_VBM``, ``E_CBM`` and ``V̄_bulk`` (the cell average
    of the bulk potential, zero for VASP and CP2K) from the bulk calculation. All in eV.
    """
    values = {"vacuum_level": vacuum_level, "slab_center_average": slab_center_average, "vbm": vbm, "cbm": cbm,
              "bulk_average": bulk_average}
    for name, value in values.items():
        if value is None or not math.isfinite(float(value)):
            raise BandflowError(f"align: {name} must be a finite number (eV); got {value!r}")
    if cbm < vbm:
        raise BandflowError(f"align: CBM ({cbm} eV) lies below VBM ({vbm} eV)")
    ip = (vacuum_level - slab_center_average) - (vbm - bulk_average)
    return float(ip), float(ip - (cbm - vbm))
