"""SOAP neighbour-density expansion and power spectra: standard SOAP (DScribe-equal) and L-SOAP.

Each atom's neighbourhood is a sum of Gaussians of width ``sigma``; its coefficients on orthonormalised
GTOs r^l exp(−α r²) times real spherical harmonics have DScribe's analytic radial integral

    c_nlm(Z) = Σ_k b_lnk Σ_{j ∈ Z} w(r_j) exp(−α_lk η/(η+α_lk) r_j²) r_j^l Y_lm(r̂_j),   η = 1/(2σ²),

(the centre atom included, as in DScribe). ``r^l Y_lm`` are e3nn's real solid harmonics. These per-element
coefficients do not depend on any learnable weight, so they are computed once per slab and cached.

* Standard SOAP: one channel per element, power spectrum p = Σ_m c^Z c^Z' in DScribe's layout
  (``soap_features``). With ``SoapSettings.dscribe`` it equals ``dscribe.descriptors.SOAP(rbf="gto",
  periodic=True)`` (its π√(8/(2l+1)) factor is folded into the coefficients).
* L-SOAP (Kiyohara, Hinuma & Oba 2024): the element channels are mixed into K pseudo-species by a
  learnable embedding, c^κ = Σ_Z e_κ(Z) c(Z); the power spectrum then has (K n)(K n+1)/2 (l+1) entries,
  independent of the number of elements. The contraction is linear in the cached c(Z), so training only
  recomputes ``pseudo_species_power_spectrum``.

Two choices make L-SOAP cheaper and smoother than DScribe's GTO SOAP (both switchable):
``shared_alphas`` uses the l = 0 GTO exponents for every l (orthonormalised per l as in DScribe), so each
pair needs n_max exponentials instead of n_max (l_max + 1) and the neighbour sum is one matrix product;
``smooth_cutoff`` multiplies each neighbour by a cosine cutoff at r_cut instead of DScribe's hard cutoff at
r_cut + 3.7 σ, so the features are continuous when atoms cross the cutoff.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from functools import cache

import numpy as np
import torch
from e3nn import o3
from scipy.linalg import sqrtm
from scipy.special import gamma

from bandflow.errors import BandflowError
from bandflow.ml.neighbours import Geometry, neighbour_list

GTO_DECAY_THRESHOLD = 1e-3
"""DScribe: each GTO decays to this value at its radius; the Gaussian padding of the cutoff likewise."""

_MAX_ATOMS_PER_CHUNK = 512
"""Structures are expanded together in chunks of about this many atoms (bounded memory, int32 indices)."""


@dataclass(frozen=True)
class SoapSettings:
    """Hyperparameters of the neighbour-density expansion (Å)."""

    r_cut: float = 6.0
    n_max: int = 6
    l_max: int = 4
    sigma: float = 0.5
    shared_alphas: bool = True
    smooth_cutoff: bool = True

    def __post_init__(self) -> None:
        if not self.r_cut > 1.0:
            raise BandflowError(f"r_cut must be larger than 1 Å for the GTO basis, got {self.r_cut}")
        if not 1 <= self.n_max <= 20:
            raise BandflowError(f"n_max must be between 1 and 20, got {self.n_max}")
        if not 0 <= self.l_max <= 12:
            raise BandflowError(f"l_max must be between 0 and 12, got {self.l_max}")
        if not self.sigma > 0:
            raise BandflowError(f"sigma must be positive, got {self.sigma}")

    @classmethod
    def dscribe(cls, r_cut: float, n_max: int, l_max: int, sigma: float = 1.0) -> SoapSettings:
        """DScribe's GTO SOAP: exponents per l, hard cutoff at r_cut + σ√(−2 ln 10⁻³), unit weights."""
        return cls(r_cut=r_cut, n_max=n_max, l_max=l_max, sigma=sigma, shared_alphas=False, smooth_cutoff=False)

    @property
    def neighbour_cutoff(self) -> float:
        """Radius of the neighbour search."""
        if self.smooth_cutoff:
            return self.r_cut
        return self.r_cut + self.sigma * math.sqrt(-2.0 * math.log(GTO_DECAY_THRESHOLD))

    @property
    def n_harmonics(self) -> int:
        return (self.l_max + 1) ** 2

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class GTORadialBasis:
    """Löwdin-orthonormalised GTOs: ``alphas[l, k]`` exponents, ``betas[l, n, k]`` = S_l^(-1/2)."""

    alphas: np.ndarray
    betas: np.ndarray

    @classmethod
    def from_settings(cls, settings: SoapSettings) -> GTORadialBasis:
        """The basis of ``dscribe.descriptors.SOAP.get_basis_gto`` (l = 0 exponents for all l if shared)."""
        n_max, l_max = settings.n_max, settings.l_max
        decay_radii = np.linspace(1.0, settings.r_cut, n_max)
        alphas = np.zeros((l_max + 1, n_max))
        betas = np.zeros((l_max + 1, n_max, n_max))
        for ell in range(l_max + 1):
            exponent_l = 0 if settings.shared_alphas else ell
            alpha = -np.log(GTO_DECAY_THRESHOLD / decay_radii**exponent_l) / decay_radii**2
            pair_sum = alpha[:, None] + alpha[None, :]
            overlap = 0.5 * gamma(ell + 1.5) * pair_sum ** (-ell - 1.5)
            beta = sqrtm(np.linalg.inv(overlap))
            if np.iscomplexobj(beta) and np.abs(beta.imag).max() > 1e-8 * np.abs(beta.real).max():
                raise BandflowError(
                    f"the GTO basis with n_max={n_max}, r_cut={settings.r_cut} cannot be orthonormalised; "
                    "lower n_max or raise r_cut"
                )
            alphas[ell] = alpha
            betas[ell] = np.real(beta)
        return cls(alphas, betas)

    def pair_exponents(self, sigma: float) -> np.ndarray:
        """−α η/(η+α): the Gaussian exponent of each radial integral, shape (l_max+1, n_max)."""
        eta = 1.0 / (2.0 * sigma**2)
        return -self.alphas * eta / (eta + self.alphas)

    def contraction(self, sigma: float) -> np.ndarray:
        """(l_max+1, n, k): maps primitive sums Σ_j exp(...) r^l Y_lm to coefficients c_nlm.

        Includes DScribe's η^(-3/2) (η/(η+α))^(l+3/2) β factors, the π^(3/2) of the Gaussian integral, the
        square root of its power-spectrum prefactor π√(8/(2l+1)) and 1/√(4π) for component-normalised
        harmonics.
        """
        eta = 1.0 / (2.0 * sigma**2)
        l_values = np.arange(self.alphas.shape[0])[:, None]
        shrink = (eta / (eta + self.alphas)) ** (l_values + 1.5)  # (l, k)
        norm = np.pi**1.5 * np.sqrt(np.pi * np.sqrt(8.0 / (2.0 * l_values + 1.0))) / np.sqrt(4.0 * np.pi)  # (l, 1)
        return eta**-1.5 * self.betas * shrink[:, None, :] * norm[:, :, None]


@cache
def _basis_tensors(settings: SoapSettings) -> tuple[np.ndarray, np.ndarray]:
    """Per-pair exponents (flattened over the distinct (l, k)) and the per-harmonic contraction (L², n, k)."""
    basis = GTORadialBasis.from_settings(settings)
    exponents = basis.pair_exponents(settings.sigma)
    if settings.shared_alphas:
        exponents = exponents[:1]
    contraction = basis.contraction(settings.sigma)
    l_of_harmonic = np.repeat(np.arange(settings.l_max + 1), 2 * np.arange(settings.l_max + 1) + 1)
    return exponents.reshape(-1), contraction[l_of_harmonic]


@dataclass(frozen=True)
class DensityCoefficients:
    """Neighbour-density coefficients of a batch of structures, one row per (atom, element of its structure).

    ``values[r]`` (n_max, (l_max+1)²) belongs to atom ``row_atom[r]`` (index into the batch's atoms) and
    element ``row_element[r]`` (atomic number). Structure s owns atoms ``atom_offsets[s]:atom_offsets[s+1]``
    and rows ``row_offsets[s]:row_offsets[s+1]``, ordered atom-major, elements ascending.
    """

    values: torch.Tensor
    row_atom: torch.Tensor
    row_element: torch.Tensor
    atom_offsets: np.ndarray
    row_offsets: np.ndarray

    @property
    def n_atoms(self) -> int:
        return int(self.atom_offsets[-1])


def _cosine_cutoff(distance: torch.Tensor, r_cut: float) -> torch.Tensor:
    return torch.where(distance < r_cut, 0.5 * (torch.cos(torch.pi * distance / r_cut) + 1.0), 0.0)


def _pair_sums(
    radial: torch.Tensor, harmonics: torch.Tensor, rows: torch.Tensor, mirror_rows: torch.Tensor, n_rows: int,
    per_degree: bool,
) -> torch.Tensor:
    """Σ_pairs radial[p, k] harmonics[p, lm] per row → (n_rows, n, L²), each pair counted in both directions.

    ``radial`` is (pairs, n), or (pairs, (l_max+1) n) with one block of n per l if ``per_degree``. A half
    neighbour list gives each pair once: it adds to ``rows[p]`` with r_ij and to ``mirror_rows[p]`` with
    r_ji = −r_ij, whose harmonics are (−1)^l Y_lm(r_ij). Written by hand because no library sums outer
    products per segment: the radial values form a sparse matrix (rows (k, direction, row), columns pairs)
    that multiplies the dense harmonics, so the (pairs × n × L²) outer product is never stored.
    """
    n_pairs = len(rows)
    n_harmonics = harmonics.shape[1]
    l_max = math.isqrt(n_harmonics) - 1
    n_radial = radial.shape[1] // (l_max + 1) if per_degree else radial.shape[1]
    both_rows = torch.cat([rows, mirror_rows + n_rows])
    order = torch.argsort(both_rows, stable=True)
    counts = torch.bincount(both_rows, minlength=2 * n_rows)
    row_starts = torch.zeros(2 * n_rows * n_radial + 1, dtype=torch.int32)
    torch.cumsum(counts.repeat(n_radial), 0, out=row_starts[1:])
    columns = (order % n_pairs).to(torch.int32).repeat(n_radial)
    blocks = [(slice(ell * n_radial, (ell + 1) * n_radial), slice(ell * ell, (ell + 1) ** 2)) for ell in range(l_max + 1)]
    if not per_degree:
        blocks = [(slice(0, n_radial), slice(0, n_harmonics))]
    parity = torch.tensor([(-1.0) ** ell for ell in range(l_max + 1) for _ in range(2 * ell + 1)], dtype=harmonics.dtype)
    out = harmonics.new_empty(n_rows, n_radial, n_harmonics)
    for radial_columns, harmonic_columns in blocks:
        values = radial[:, radial_columns].repeat(2, 1)[order].t().reshape(-1)
        selector = torch.sparse_csr_tensor(
            row_starts, columns, values, (2 * n_rows * n_radial, n_pairs), check_invariants=False
        )
        block = harmonics[:, harmonic_columns]
        sums = (selector @ block).view(n_radial, 2, n_rows, block.shape[1])
        out[:, :, harmonic_columns] = (sums[:, 0] + sums[:, 1] * parity[harmonic_columns]).permute(1, 0, 2)
    return out


@cache
def _solid_harmonics(l_max: int) -> o3.SphericalHarmonics:
    """e3nn's real spherical harmonics times r^l; "component" normalisation (√(4π) × orthonormal) saves a
    pass over the pairs, the 1/√(4π) is part of ``GTORadialBasis.contraction``."""
    return o3.SphericalHarmonics(list(range(l_max + 1)), normalize=False, normalization="component")


def density_coefficients(
    geometries: Sequence[Geometry], settings: SoapSettings, dtype: torch.dtype = torch.float64, n_threads: int = 1
) -> DensityCoefficients:
    """Per-atom, per-element density coefficients c_nlm(Z) of ``geometries`` (expanded together in chunks)."""
    chunks: list[list[Geometry]] = [[]]
    chunk_atoms = 0
    for geometry in geometries:
        if chunks[-1] and chunk_atoms + len(geometry) > _MAX_ATOMS_PER_CHUNK:
            chunks.append([])
            chunk_atoms = 0
        chunks[-1].append(geometry)
        chunk_atoms += len(geometry)
    parts = [_chunk_coefficients(chunk, settings, dtype, n_threads) for chunk in chunks if chunk]
    if len(parts) == 1:
        return parts[0]
    atom_shift = np.cumsum([0] + [part.n_atoms for part in parts[:-1]])
    row_shift = np.cumsum([0] + [len(part.values) for part in parts[:-1]])
    return DensityCoefficients(
        values=torch.cat([part.values for part in parts]),
        row_atom=torch.cat([part.row_atom + int(shift) for part, shift in zip(parts, atom_shift, strict=True)]),
        row_element=torch.cat([part.row_element for part in parts]),
        atom_offsets=np.concatenate([[0]] + [part.atom_offsets[1:] + shift for part, shift in zip(parts, atom_shift, strict=True)]),
        row_offsets=np.concatenate([[0]] + [part.row_offsets[1:] + shift for part, shift in zip(parts, row_shift, strict=True)]),
    )


def _chunk_coefficients(
    geometries: Sequence[Geometry], settings: SoapSettings, dtype: torch.dtype, n_threads: int
) -> DensityCoefficients:
    exponents, contraction = _basis_tensors(settings)
    vectors, pair_rows, mirror_rows, self_rows, row_atom, row_element = [], [], [], [], [], []
    atom_offsets, row_offsets = [0], [0]
    for geometry in geometries:
        pairs = neighbour_list(geometry, settings.neighbour_cutoff, n_threads=n_threads, full=False)
        species, local = np.unique(geometry.numbers, return_inverse=True)
        n_atoms, n_species = len(geometry), len(species)
        first_row = row_offsets[-1]
        vectors.append(pairs.vectors)
        pair_rows.append(first_row + pairs.centers * n_species + local[pairs.neighbours])
        mirror_rows.append(first_row + pairs.neighbours * n_species + local[pairs.centers])
        self_rows.append(first_row + np.arange(n_atoms) * n_species + local)
        row_atom.append(np.repeat(np.arange(n_atoms) + atom_offsets[-1], n_species))
        row_element.append(np.tile(species, n_atoms))
        atom_offsets.append(atom_offsets[-1] + n_atoms)
        row_offsets.append(first_row + n_atoms * n_species)
    n_rows = row_offsets[-1]
    displacement = torch.from_numpy(np.concatenate(vectors)).to(dtype)
    squared = (displacement * displacement).sum(1)
    radial = torch.exp(squared[:, None] * torch.from_numpy(exponents).to(dtype)[None, :])
    if settings.smooth_cutoff:
        radial = radial * _cosine_cutoff(squared.sqrt(), settings.r_cut)[:, None]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        sums = _pair_sums(
            radial,
            _solid_harmonics(settings.l_max)(displacement),
            torch.from_numpy(np.concatenate(pair_rows)),
            torch.from_numpy(np.concatenate(mirror_rows)),
            n_rows,
            per_degree=not settings.shared_alphas,
        )  # (rows, k, L²)
    # the centre atom itself: r = 0, only l = 0 is non-zero (component-normalised Y_00 = 1)
    sums[torch.from_numpy(np.concatenate(self_rows)), :, 0] += 1.0
    values = torch.einsum("rkm,mnk->rnm", sums, torch.from_numpy(contraction).to(dtype))
    return DensityCoefficients(
        values=values,
        row_atom=torch.from_numpy(np.concatenate(row_atom)),
        row_element=torch.from_numpy(np.concatenate(row_element)),
        atom_offsets=np.asarray(atom_offsets),
        row_offsets=np.asarray(row_offsets),
    )


def power_spectrum(coefficients: torch.Tensor, l_max: int) -> torch.Tensor:
    """p[l, (c, c')] = Σ_m x[c, lm] x[c', lm] for c ≤ c': (atoms, channels, (l_max+1)²) → (atoms, features).

    Layout: l-major, then the upper triangle (row-major) of the channel pair.
    """
    n_atoms, n_channels, _ = coefficients.shape
    upper = torch.triu_indices(n_channels, n_channels)
    blocks = [coefficients[:, :, ell * ell : (ell + 1) ** 2] for ell in range(l_max + 1)]
    if torch.is_grad_enabled() and coefficients.requires_grad:
        products = torch.stack([torch.bmm(block, block.transpose(1, 2)) for block in blocks])
    else:  # writing into one buffer saves a copy
        products = coefficients.new_empty(l_max + 1, n_atoms, n_channels, n_channels)
        for ell, block in enumerate(blocks):
            torch.bmm(block, block.transpose(1, 2), out=products[ell])
    selected = products.view(-1, n_channels * n_channels).index_select(1, upper[0] * n_channels + upper[1])
    return selected.view(l_max + 1, n_atoms, -1).transpose(0, 1).reshape(n_atoms, -1)


def pseudo_species_power_spectrum(
    values: torch.Tensor, row_atom: torch.Tensor, row_weights: torch.Tensor, n_atoms: int, l_max: int
) -> torch.Tensor:
    """Power spectrum of the pseudo-species densities c^κ_i = Σ_rows w_κ(row) c(row).

    ``values`` (rows, n, L²) are cached ``DensityCoefficients.values`` (each atom's rows contiguous),
    ``row_weights`` (rows, K) the embedding of each row's element. Channels are ordered (κ, n).
    """
    n_rows, n_max, n_harmonics = values.shape
    n_pseudo = row_weights.shape[1]
    rows_per_atom = torch.bincount(row_atom, minlength=n_atoms)
    width = int(rows_per_atom.max())
    flat_values = values.reshape(n_rows, n_max * n_harmonics)
    if n_rows == n_atoms * width:  # every atom has the same number of element rows: a view suffices
        dense_values, dense_weights = flat_values.view(n_atoms, width, -1), row_weights.view(n_atoms, width, -1)
    else:
        first_row = torch.cumsum(rows_per_atom, 0) - rows_per_atom
        slot = row_atom * width + torch.arange(n_rows) - first_row[row_atom]
        dense_values = flat_values.new_zeros(n_atoms * width, flat_values.shape[1]).index_copy(0, slot, flat_values)
        dense_weights = row_weights.new_zeros(n_atoms * width, n_pseudo).index_copy(0, slot, row_weights)
        dense_values, dense_weights = dense_values.view(n_atoms, width, -1), dense_weights.view(n_atoms, width, -1)
    density = torch.bmm(dense_weights.transpose(1, 2), dense_values)  # (atoms, K, n L²)
    return power_spectrum(density.view(n_atoms, n_pseudo * n_max, n_harmonics), l_max)


def lsoap_feature_count(settings: SoapSettings, n_pseudo: int) -> int:
    channels = n_pseudo * settings.n_max
    return channels * (channels + 1) // 2 * (settings.l_max + 1)


@dataclass(frozen=True)
class PairSpectra:
    """Element-pair power spectra P_ZZ'[l, n, n'] = Σ_m c_nlm(Z) c_n'lm(Z'), one row per (atom, Z ≤ Z' of
    its structure), ``values`` (rows, (l_max+1) n_max²) in [l][n][n'] order.

    L-SOAP is bilinear in them: p[l, κn, κ'n'] = Σ_{Z,Z'} e_κ(Z) e_κ'(Z') P_ZZ'[l, n, n'] (ordered pairs,
    P_Z'Z = P_ZZ'ᵀ). They depend on no learnable weight, so a training epoch only contracts them.
    """

    values: torch.Tensor
    row_atom: torch.Tensor
    row_elements: torch.Tensor
    atom_offsets: np.ndarray
    row_offsets: np.ndarray

    @property
    def n_atoms(self) -> int:
        return int(self.atom_offsets[-1])


def element_pair_spectra(coefficients: DensityCoefficients, l_max: int) -> PairSpectra:
    """``PairSpectra`` of every atom from its per-element density coefficients."""
    n_max = coefficients.values.shape[1]
    species_per_structure = np.diff(coefficients.row_offsets) // np.maximum(np.diff(coefficients.atom_offsets), 1)
    values, row_atom, row_elements, row_offsets = [], [], [], [0]
    start = 0
    while start < len(species_per_structure):  # runs of structures with the same number of elements
        n_species = int(species_per_structure[start])
        stop = start
        while stop < len(species_per_structure) and species_per_structure[stop] == n_species:
            stop += 1
        first_atom, last_atom = int(coefficients.atom_offsets[start]), int(coefficients.atom_offsets[stop])
        first_row, last_row = int(coefficients.row_offsets[start]), int(coefficients.row_offsets[stop])
        n_atoms = last_atom - first_atom
        density = coefficients.values[first_row:last_row].reshape(n_atoms, n_species * n_max, -1)
        full = torch.stack([
            torch.bmm(block, block.transpose(1, 2))
            for block in (density[:, :, ell * ell : (ell + 1) ** 2] for ell in range(l_max + 1))
        ], dim=1).view(n_atoms, l_max + 1, n_species, n_max, n_species, n_max)
        first, second = np.triu_indices(n_species)
        pairs = full[:, :, first, :, second, :]  # (pairs, atoms, l, n, n')
        values.append(pairs.permute(1, 0, 2, 3, 4).reshape(n_atoms * len(first), -1))
        row_atom.append(torch.repeat_interleave(torch.arange(first_atom, last_atom), len(first)))
        elements = coefficients.row_element[first_row:last_row].view(n_atoms, n_species)
        row_elements.append(torch.stack([elements[:, first], elements[:, second]], dim=2).reshape(-1, 2))
        for structure in range(start, stop):
            n_structure_atoms = int(coefficients.atom_offsets[structure + 1] - coefficients.atom_offsets[structure])
            row_offsets.append(row_offsets[-1] + n_structure_atoms * len(first))
        start = stop
    return PairSpectra(
        values=torch.cat(values), row_atom=torch.cat(row_atom), row_elements=torch.cat(row_elements),
        atom_offsets=coefficients.atom_offsets.copy(), row_offsets=np.asarray(row_offsets),
    )


def lsoap_from_pair_spectra(
    values: torch.Tensor, row_atom: torch.Tensor, first_weights: torch.Tensor, second_weights: torch.Tensor,
    same_element: torch.Tensor, n_atoms: int, n_max: int, l_max: int,
) -> torch.Tensor:
    """L-SOAP features (layout of ``power_spectrum``) from ``PairSpectra`` rows: ``first_weights`` and
    ``second_weights`` (rows, K) are the embeddings of each row's two elements, ``same_element`` (rows,)
    marks Z = Z' rows (counted once; Z < Z' rows stand for both orders)."""
    n_rows, n_pseudo = first_weights.shape
    spectra = values.view(n_rows, l_max + 1, n_max, n_max)
    mixed = torch.einsum("ra,rb,rlnm->rlanbm", first_weights, second_weights, spectra)
    mixed = torch.where(same_element[:, None, None, None, None, None], mixed, mixed + mixed.permute(0, 1, 4, 5, 2, 3))
    channels = n_pseudo * n_max
    full = values.new_zeros(n_atoms, (l_max + 1) * channels * channels).index_add_(0, row_atom, mixed.reshape(n_rows, -1))
    upper = torch.triu_indices(channels, channels)
    return full.view(n_atoms, l_max + 1, channels * channels)[:, :, upper[0] * channels + upper[1]].reshape(n_atoms, -1)


def soap_from_pair_spectra(
    values: torch.Tensor, row_atom: torch.Tensor, first_channel: torch.Tensor, second_channel: torch.Tensor,
    n_atoms: int, n_channels: int, n_max: int, l_max: int,
) -> torch.Tensor:
    """Standard SOAP features (the layout of :func:`lsoap_from_pair_spectra` with one-hot weights over
    ``n_channels`` element channels) from ``PairSpectra`` rows, each row's elements given by channel.

    With one-hot weights each spectrum entry lands in one feature, so the rows are scattered into place:
    the weighted route forms (channels × n_max)² numbers per row, which for twenty elements is hundreds of
    megabytes per batch. A row of two elements fills the upper-triangle slot of each (c, c') entry; a row of
    one element only its c ≤ c' entries.
    """
    n_rows = len(row_atom)
    width = n_channels * n_max
    n_upper = width * (width + 1) // 2
    radial = torch.arange(n_max)
    first = (first_channel[:, None, None] * n_max + radial[None, :, None]).expand(n_rows, n_max, n_max)
    second = (second_channel[:, None, None] * n_max + radial[None, None, :]).expand(n_rows, n_max, n_max)
    low, high = torch.minimum(first, second), torch.maximum(first, second)
    slot = low * width - low * (low - 1) // 2 + (high - low)  # row-major upper triangle (torch.triu_indices)
    keep = (first <= second) | (first_channel != second_channel)[:, None, None]
    degree = torch.arange(l_max + 1)[None, :, None, None] * n_upper
    target = (row_atom[:, None, None, None] * ((l_max + 1) * n_upper) + degree + slot[:, None]).expand(
        n_rows, l_max + 1, n_max, n_max
    )
    mask = keep[:, None].expand_as(target)
    spectra = values.view(n_rows, l_max + 1, n_max, n_max)
    out = values.new_zeros(n_atoms * (l_max + 1) * n_upper).index_add_(0, target[mask], spectra[mask])
    return out.view(n_atoms, -1)


@cache
def _dscribe_columns(n_species: int, n_max: int, l_max: int) -> np.ndarray:
    """Column of our (l, upper triangle of (species, n)) layout for each DScribe feature, in DScribe order."""
    n_channels = n_species * n_max
    upper = np.triu_indices(n_channels)
    position = {(int(a), int(b)): i for i, (a, b) in enumerate(zip(*upper, strict=True))}
    per_l = len(upper[0])
    columns = []
    for s1 in range(n_species):
        for s2 in range(s1, n_species):
            for ell in range(l_max + 1):
                for n1 in range(n_max):
                    for n2 in range(n1 if s1 == s2 else 0, n_max):
                        columns.append(ell * per_l + position[(s1 * n_max + n1, s2 * n_max + n2)])
    return np.asarray(columns)


def soap_features(
    geometries: Sequence[Geometry], species: Sequence[int], settings: SoapSettings, dtype: torch.dtype = torch.float64
) -> np.ndarray:
    """Standard SOAP power spectrum per atom (all structures stacked), in DScribe's feature order.

    ``species`` are the atomic numbers that get a channel; an element outside them is an error.
    """
    ordered = sorted(set(int(z) for z in species))
    coefficients = density_coefficients(geometries, settings, dtype=dtype)
    channel = {z: i for i, z in enumerate(ordered)}
    missing = sorted(set(coefficients.row_element.tolist()) - set(ordered))
    if missing:
        raise BandflowError(f"atomic numbers {missing} have no SOAP channel (species {ordered})")
    one_hot = torch.zeros(len(coefficients.row_element), len(ordered), dtype=dtype)
    one_hot[torch.arange(len(one_hot)), torch.tensor([channel[int(z)] for z in coefficients.row_element])] = 1.0
    features = pseudo_species_power_spectrum(
        coefficients.values, coefficients.row_atom, one_hot, coefficients.n_atoms, settings.l_max
    )
    return features[:, _dscribe_columns(len(ordered), settings.n_max, settings.l_max)].numpy()
