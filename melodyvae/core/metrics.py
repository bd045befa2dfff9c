"""Metrics of how well latent dims carry attributes (domain-free).

Every function takes ``latents`` (N, Z), the posterior means of N held-out items, and
``attributes`` (N, L), their measured attribute values, and returns plain floats: a
mean over attributes and the value of every attribute. The definitions follow the
ones the AR-VAE literature reports:

- *interpretability*: for each attribute the latent dim sharing most mutual
  information with it (k-nearest-neighbour estimate, scikit-learn), and the R² of a
  one-dimensional linear regression from that dim to the attribute;
- *MIG* (mutual information gap): both sides discretised into equal-width bins;
  the gap between the two dims with the most mutual information with the
  attribute, divided by the attribute's entropy;
- *SAP* (separated attribute predictability): the gap between the two best R²
  scores of one-dimensional linear fits of the attribute from single dims;
- *modularity*: per latent dim, how much of its (discrete) mutual information
  goes to a single attribute; 1 when each dim depends on one attribute only;
- *SCC*: for each attribute, the largest |Spearman ρ| with any latent dim.

Dims that never vary (an inactive latent) simply score zero everywhere.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from scipy.stats import ConstantInputWarning, spearmanr
from sklearn.feature_selection import mutual_info_regression
from sklearn.linear_model import LinearRegression
from sklearn.metrics import mutual_info_score

N_BINS = 20


@dataclass(frozen=True)
class Score:
    """A metric's mean over attributes and its value per attribute (in order)."""

    mean: float
    per_attribute: tuple[float, ...]

    @classmethod
    def of(cls, values) -> Score:
        values = tuple(float(v) for v in values)
        return cls(float(np.mean(values)) if values else float("nan"), values)

    def as_dict(self, names) -> dict:
        return {
            "mean": self.mean,
            "per_attribute": dict(zip(names, self.per_attribute, strict=True)),
        }


def _check(latents: np.ndarray, attributes: np.ndarray) -> tuple[np.ndarray, ...]:
    latents = np.asarray(latents, dtype=np.float64)
    attributes = np.asarray(attributes, dtype=np.float64)
    if latents.ndim != 2 or attributes.ndim != 2:
        raise ValueError("latents and attributes must be 2-d arrays")
    if len(latents) != len(attributes):
        raise ValueError(
            f"{len(latents)} latent codes but {len(attributes)} attribute rows"
        )
    if len(latents) < 2:
        raise ValueError("metrics need at least 2 items")
    return latents, attributes


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman ρ; 0 (no evidence of a relation) where either side is constant."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConstantInputWarning)
        rho = spearmanr(x, y).statistic
    return 0.0 if np.isnan(rho) else float(rho)


def spearman_per_attribute(
    latents: np.ndarray, attributes: np.ndarray, reg_dims: list[int]
) -> list[float]:
    """Spearman correlation of attribute ``l`` with latent dim ``reg_dims[l]``."""
    return [
        spearman(latents[:, dim], attributes[:, i]) for i, dim in enumerate(reg_dims)
    ]


def discretise(values: np.ndarray, n_bins: int = N_BINS) -> np.ndarray:
    """Each column of ``values`` (N, K) as bin numbers of ``n_bins`` equal-width bins
    spanning that column's range (a constant column falls in one bin)."""
    values = np.asarray(values, dtype=np.float64)
    binned = np.zeros(values.shape, dtype=np.int64)
    for k in range(values.shape[1]):
        edges = np.histogram_bin_edges(values[:, k], bins=n_bins)
        binned[:, k] = np.digitize(values[:, k], edges[1:-1])
    return binned


def discrete_mutual_information(latents: np.ndarray, attributes: np.ndarray):
    """(Z, L) mutual information (nats) between binned latent dims and attributes."""
    codes, factors = discretise(latents), discretise(attributes)
    return np.array(
        [
            [
                mutual_info_score(codes[:, z], factors[:, a])
                for a in range(factors.shape[1])
            ]
            for z in range(codes.shape[1])
        ]
    )


def _r2_single(x: np.ndarray, y: np.ndarray) -> float:
    """R² of the least-squares line from ``x`` to ``y`` (0 for a constant side)."""
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        return 0.0
    column = x.reshape(-1, 1)
    return float(LinearRegression().fit(column, y).score(column, y))


def interpretability(
    latents: np.ndarray, attributes: np.ndarray, seed: int = 0
) -> tuple[Score, tuple[int, ...]]:
    """The interpretability score and, per attribute, the dim it chose."""
    latents, attributes = _check(latents, attributes)
    scores, dims = [], []
    for a in range(attributes.shape[1]):
        if np.ptp(attributes[:, a]) == 0:
            scores.append(0.0)
            dims.append(-1)
            continue
        information = mutual_info_regression(
            latents, attributes[:, a], random_state=seed
        )
        dim = int(np.argmax(information))
        dims.append(dim)
        scores.append(_r2_single(latents[:, dim], attributes[:, a]))
    return Score.of(scores), tuple(dims)


def mig(latents: np.ndarray, attributes: np.ndarray) -> Score:
    """Mutual information gap, normalised by each attribute's entropy."""
    latents, attributes = _check(latents, attributes)
    if latents.shape[1] < 2:
        raise ValueError("MIG needs at least 2 latent dims")
    information = discrete_mutual_information(latents, attributes)
    factors = discretise(attributes)
    gaps = []
    for a in range(attributes.shape[1]):
        entropy = mutual_info_score(factors[:, a], factors[:, a])
        top = np.sort(information[:, a])[::-1]
        gaps.append((top[0] - top[1]) / entropy if entropy > 0 else 0.0)
    return Score.of(gaps)


def sap(latents: np.ndarray, attributes: np.ndarray) -> Score:
    """Gap between the two best single-dim linear-fit R² scores, per attribute."""
    latents, attributes = _check(latents, attributes)
    if latents.shape[1] < 2:
        raise ValueError("SAP needs at least 2 latent dims")
    gaps = []
    for a in range(attributes.shape[1]):
        r2 = sorted(
            (
                _r2_single(latents[:, z], attributes[:, a])
                for z in range(latents.shape[1])
            ),
            reverse=True,
        )
        gaps.append(r2[0] - r2[1])
    return Score.of(gaps)


def modularity(latents: np.ndarray, attributes: np.ndarray) -> Score:
    """Modularity over latent dims (Ridgeway & Mozer's definition).

    For each dim, with θ its largest mutual information with any attribute, the
    deviation is Σ over the other attributes of MI² / (θ² · (L − 1)); the score is
    1 − deviation. Dims sharing no information with any attribute are left out.
    The ``per_attribute`` values average the dims whose largest share goes to that
    attribute (0 where no dim does).

    Binned mutual information is biased upwards, so a dim of pure noise still
    shares a little with every attribute and scores low; a model with many
    unregularised dims is marked down for them.
    """
    latents, attributes = _check(latents, attributes)
    n_attributes = attributes.shape[1]
    if n_attributes < 2:
        raise ValueError("modularity needs at least 2 attributes")
    information = discrete_mutual_information(latents, attributes)
    scores, owners = [], []
    for row in information:
        theta = row.max()
        if theta <= 0:
            continue
        owner = int(np.argmax(row))
        rest = np.delete(row, owner)
        deviation = float(np.sum(rest**2) / (theta**2 * (n_attributes - 1)))
        scores.append(1.0 - deviation)
        owners.append(owner)
    mean = float(np.mean(scores)) if scores else 0.0
    per_attribute = tuple(
        float(np.mean([s for s, o in zip(scores, owners, strict=True) if o == a]))
        if a in owners
        else 0.0
        for a in range(n_attributes)
    )
    return Score(mean, per_attribute)


def scc(latents: np.ndarray, attributes: np.ndarray) -> Score:
    """Largest |Spearman ρ| between each attribute and any latent dim."""
    latents, attributes = _check(latents, attributes)
    return Score.of(
        max(
            abs(spearman(latents[:, z], attributes[:, a]))
            for z in range(latents.shape[1])
        )
        for a in range(attributes.shape[1])
    )


def disentanglement(
    latents: np.ndarray, attributes: np.ndarray, names, seed: int = 0
) -> dict:
    """Every metric above as ``{name: {"mean", "per_attribute"}}`` (JSON-ready),
    plus ``interpretability_dims``: the dim interpretability chose per attribute."""
    names = tuple(names)
    score, dims = interpretability(latents, attributes, seed=seed)
    return {
        "interpretability": score.as_dict(names),
        "interpretability_dims": dict(zip(names, dims, strict=True)),
        "mig": mig(latents, attributes).as_dict(names),
        "sap": sap(latents, attributes).as_dict(names),
        "modularity": modularity(latents, attributes).as_dict(names),
        "scc": scc(latents, attributes).as_dict(names),
    }


def traversal_control(
    latents: np.ndarray,
    reg_dims: list[int],
    values: np.ndarray,
    measure_decoded,
    names,
) -> dict:
    """Whether each regularised dim works as a slider for its attribute.

    For every attribute ``l`` the codes ``latents`` (N, Z) are copied with dim
    ``reg_dims[l]`` set to each of ``values[l]`` (V values; a single (V,) array is
    used for every dim), decoded and re-measured by ``measure_decoded(codes)`` →
    (M, L) attributes, NaN where one cannot be measured from the decoding.

    ``traversal_spearman``: the Spearman ρ between the coordinate and attribute
    ``l`` re-measured, over all (code, value) pairs that could be measured.
    ``traversal_crosstalk``: how far the *other* attributes moved from those of the
    same code decoded unchanged, in units of each attribute's standard deviation
    over those unchanged decodings, averaged (0 = untouched, 1 = a typical
    item-to-item difference). Attributes that are never measurable are left out of
    both (and of the other attributes' crosstalk). JSON-ready, like
    :func:`disentanglement`.
    """
    latents = np.asarray(latents, dtype=np.float32)
    names = tuple(names)
    values = np.asarray(values, dtype=np.float32)
    if values.ndim == 1:
        values = np.repeat(values[None], len(reg_dims), axis=0)
    n_codes = len(latents)
    own = np.asarray(measure_decoded(latents), dtype=np.float64)  # (N, L)
    measurable = [bool(np.isfinite(own[:, i]).any()) for i in range(len(names))]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        spread = np.nanstd(own, axis=0)
    spread = np.where(np.isfinite(spread) & (spread > 0), spread, 1.0)
    rho, crosstalk = {}, {}
    for index, (name, dim) in enumerate(zip(names, reg_dims, strict=True)):
        if not measurable[index]:
            continue
        steps = values[index]
        codes = np.repeat(latents[None], len(steps), axis=0)  # (V, N, Z)
        codes[:, :, dim] = steps[:, None]
        moved = np.asarray(
            measure_decoded(codes.reshape(len(steps) * n_codes, -1)), dtype=np.float64
        ).reshape(len(steps), n_codes, -1)
        coordinate = np.repeat(steps, n_codes)
        own_values = moved[:, :, index].reshape(-1)
        finite = np.isfinite(own_values)
        rho[name] = (
            spearman(coordinate[finite], own_values[finite])
            if finite.sum() >= 2
            else 0.0
        )
        others = [i for i in range(len(names)) if i != index and measurable[i]]
        if others:
            change = np.abs(moved[:, :, others] - own[None][:, :, others])
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                mean_change = float(np.nanmean(change / spread[others]))
            if np.isfinite(mean_change):
                crosstalk[name] = mean_change
    return {
        "traversal_spearman": _mean_and_values(rho),
        "traversal_crosstalk": _mean_and_values(crosstalk),
    }


def _mean_and_values(per_attribute: dict[str, float]) -> dict:
    mean = float(np.mean(list(per_attribute.values()))) if per_attribute else None
    return {"mean": mean, "per_attribute": per_attribute}
