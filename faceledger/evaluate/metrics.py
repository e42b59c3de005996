"""Pure-numpy accuracy metrics for face verification (pairs) and identification (gallery).

Conventions shared by every function here:

* Scores are similarities: higher means "more likely the same person" (cosine similarity of
  unit embeddings). A pair is predicted *same* when ``score >= threshold``.
* Inputs are validated up front; empty inputs, mismatched lengths, non-finite scores or
  single-class label sets (where a metric is undefined) raise ``ValueError`` with a message
  that says what was wrong, instead of returning a silent ``nan``.
* Accumulation is float64 (counts are exact integers), so results do not depend on whether
  the caller passes float32 embeddings.

Verification follows the LFW protocol: ``kfold_accuracy`` picks a threshold on all folds but
one and measures accuracy on the held-out fold. ``folds_from_layout`` reproduces the fold
structure of LFW-style pairs files (600-row blocks) when the file has no fold column.

Identification uses an open-set split built by ``split_gallery`` (see its docstring), so a
single embedding pass over ``Person/*.jpg`` folders yields rank-k rates *and* a false match
rate; ``open_set_report`` does the whole thing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

LFW_FOLD_SIZE = 600
"""Rows per fold in LFW-style pairs files (300 same pairs followed by 300 different)."""

_PROBE_BLOCK = 2048
"""Probes scored per matrix product, bounding memory to ``_PROBE_BLOCK x gallery`` floats."""

_FAR_EPS = 1e-9
"""Slack for ``floor(far * n_neg)``: float products such as ``0.29 * 100`` land just below."""


# --------------------------------------------------------------------------- validation


def _as_pairs(scores: np.ndarray, same: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Validate and convert pair inputs to (float64 scores, bool labels)."""
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(same)
    if s.ndim != 1 or y.ndim != 1:
        raise ValueError(f"scores and same must be 1-D, got shapes {s.shape} and {y.shape}")
    if s.size == 0:
        raise ValueError("no pairs: scores is empty")
    if s.shape != y.shape:
        raise ValueError(f"scores has {s.size} entries but same has {y.size}")
    if not np.all(np.isfinite(s)):
        raise ValueError("scores contain NaN or infinity")
    if y.dtype != np.bool_:
        if not np.all((y == 0) | (y == 1)):
            raise ValueError("same must be boolean or 0/1")
        y = y.astype(np.bool_)
    return s, y


def _require_both_classes(same: np.ndarray) -> tuple[int, int]:
    """Return (n_pos, n_neg), refusing label sets where rate metrics are undefined."""
    n_pos = int(np.count_nonzero(same))
    n_neg = int(same.size - n_pos)
    if n_pos == 0 or n_neg == 0:
        raise ValueError(f"need both same and different pairs, got {n_pos} same, {n_neg} diff")
    return n_pos, n_neg


def _between(lo: float, hi: float) -> float:
    """Midpoint of (lo, hi], falling back to ``hi`` when lo and hi are adjacent floats.

    With ``score >= threshold`` a threshold equal to ``lo`` would accept ``lo`` and change the
    decision, so the result must be strictly above ``lo``.
    """
    mid = 0.5 * (lo + hi)
    return mid if lo < mid <= hi else hi


def _unit_rows(x: np.ndarray, name: str) -> np.ndarray:
    """Rows of ``x`` as float64 unit vectors, so dot products are cosine similarities."""
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n, dim), got shape {a.shape}")
    if a.shape[0] == 0:
        raise ValueError(f"{name} is empty")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} contains NaN or infinity")
    norms = np.linalg.norm(a, axis=1, keepdims=True)
    if np.any(norms == 0):
        raise ValueError(f"{name} has zero-length rows; cannot compute cosine similarity")
    unit: np.ndarray = a / norms
    return unit


# --------------------------------------------------------------------------- verification


def accuracy_at(scores: np.ndarray, same: np.ndarray, threshold: float) -> float:
    """Fraction of pairs classified correctly when ``score >= threshold`` means same."""
    s, y = _as_pairs(scores, same)
    return float(np.count_nonzero((s >= threshold) == y) / s.size)


def best_threshold(scores: np.ndarray, same: np.ndarray) -> float:
    """Threshold maximising accuracy on these pairs.

    Every threshold strictly between two consecutive unique scores gives the same decisions,
    so the candidates are those gaps (plus "accept all" and "reject all", bounded by virtual
    scores one data span beyond each end). Adjacent candidates with the best accuracy form a
    plateau; the widest plateau wins (lowest one on a tie) and its middle is returned, which
    keeps the threshold as far as possible from the scores that would flip a decision.
    """
    s, y = _as_pairs(scores, same)
    uniq, inv = np.unique(s, return_inverse=True)
    m = uniq.size
    pos = np.bincount(inv, weights=y, minlength=m).astype(np.int64)
    neg = np.bincount(inv, minlength=m).astype(np.int64) - pos
    # Candidate k accepts unique values uniq[k:], k = 0 (accept all) .. m (reject all).
    cum_pos = np.concatenate(([0], np.cumsum(pos)))
    cum_neg = np.concatenate(([0], np.cumsum(neg)))
    correct = (cum_pos[-1] - cum_pos) + cum_neg
    best = correct == correct.max()

    span = max(1.0, float(uniq[-1] - uniq[0]), float(abs(uniq[0])), float(abs(uniq[-1])))
    # Candidate k covers thresholds in (edges[k], edges[k + 1]].
    edges = np.concatenate(([uniq[0] - span], uniq, [uniq[-1] + span]))

    # Runs of consecutive best candidates: [starts[i], ends[i]] inclusive.
    flags = np.concatenate(([False], best, [False])).astype(np.int8)
    change = np.diff(flags)
    starts = np.flatnonzero(change == 1)
    ends = np.flatnonzero(change == -1) - 1
    widths = edges[ends + 1] - edges[starts]
    i = int(np.argmax(widths))  # first maximum: lowest plateau on ties
    return _between(float(edges[starts[i]]), float(edges[ends[i] + 1]))


def kfold_accuracy(
    scores: np.ndarray, same: np.ndarray, folds: np.ndarray
) -> tuple[float, float, list[float]]:
    """LFW-protocol accuracy: threshold chosen on the other folds, measured on each fold.

    Returns (mean accuracy, population std of the per-fold accuracies, per-fold thresholds in
    ascending fold-id order). Reporting the held-out accuracy rather than the best accuracy
    on all pairs avoids the optimistic bias of tuning the threshold on the test data.
    """
    s, y = _as_pairs(scores, same)
    f = np.asarray(folds)
    if f.shape != s.shape:
        raise ValueError(f"folds has shape {f.shape}, expected {s.shape}")
    fold_ids = np.unique(f)
    if fold_ids.size < 2:
        raise ValueError("k-fold evaluation needs at least 2 distinct folds")
    accs: list[float] = []
    thresholds: list[float] = []
    for fid in fold_ids:
        test = f == fid
        t = best_threshold(s[~test], y[~test])
        thresholds.append(t)
        accs.append(accuracy_at(s[test], y[test], t))
    a = np.asarray(accs, dtype=np.float64)
    return float(a.mean()), float(a.std()), thresholds


def lfw_folds(n_pairs: int, n_folds: int = 10) -> np.ndarray:
    """Fold index per pair: ``n_folds`` contiguous, near-equal blocks in file order.

    Matches LFW's pairs.txt, where each fold is a contiguous block of rows.
    """
    if n_folds < 2:
        raise ValueError(f"n_folds must be >= 2, got {n_folds}")
    if n_pairs < n_folds:
        raise ValueError(f"cannot split {n_pairs} pairs into {n_folds} folds")
    return (np.arange(n_pairs, dtype=np.int64) * n_folds) // n_pairs


def folds_from_layout(n_pairs: int, same: np.ndarray | None = None) -> np.ndarray:
    """Fold index per pair for a pairs file that has no fold column.

    * ``n_pairs`` a multiple of 600 (at least 2 blocks): LFW layout, fold k is rows
      ``600*k .. 600*k+599`` (300 same then 300 different in LFW's files). The faces-dev
      ``pairs.csv`` (5,400 rows) thus gives 9 folds, LFW's ``pairs.txt`` (6,000) gives 10.
    * otherwise 10 folds. With ``same`` given they are stratified: the i-th same pair goes to
      fold ``i * 10 // n_same`` and likewise for different pairs, so each fold is a
      contiguous run of each class with the overall class balance. Without ``same``,
      plain contiguous blocks (``lfw_folds``).
    """
    n_blocks = n_pairs // LFW_FOLD_SIZE
    if n_pairs % LFW_FOLD_SIZE == 0 and n_blocks >= 2:
        return np.arange(n_pairs, dtype=np.int64) // LFW_FOLD_SIZE
    n_folds = 10
    if same is None:
        return lfw_folds(n_pairs, n_folds)
    y = np.asarray(same).astype(np.bool_)
    if y.shape != (n_pairs,):
        raise ValueError(f"same has shape {y.shape}, expected ({n_pairs},)")
    n_pos, n_neg = _require_both_classes(y)
    if min(n_pos, n_neg) < n_folds:
        raise ValueError(f"need >= {n_folds} pairs of each class, got {n_pos} same, {n_neg} diff")
    folds = np.empty(n_pairs, dtype=np.int64)
    for mask, n in ((y, n_pos), (~y, n_neg)):
        folds[mask] = (np.arange(n, dtype=np.int64) * n_folds) // n
    return folds


def roc_auc(scores: np.ndarray, same: np.ndarray) -> float:
    """Area under the ROC curve via the Mann-Whitney U statistic.

    Equals the probability that a random same pair outscores a random different pair, ties
    counting one half; tied scores get their average rank, so this is exact in O(n log n).
    """
    s, y = _as_pairs(scores, same)
    n_pos, n_neg = _require_both_classes(y)
    _, inv, counts = np.unique(s, return_inverse=True, return_counts=True)
    before = np.concatenate(([0], np.cumsum(counts)[:-1])).astype(np.float64)
    avg_rank = before + (counts + 1) / 2.0  # 1-based average rank of each unique value
    rank_sum = float(avg_rank[inv][y].sum())
    u = rank_sum - n_pos * (n_pos + 1) / 2.0
    return u / (float(n_pos) * float(n_neg))


def tar_at_far(scores: np.ndarray, same: np.ndarray, far: float) -> tuple[float, float]:
    """True accept rate at the most permissive threshold whose false accept rate is <= far.

    With ``k = floor(far * n_neg)`` allowed false accepts, the threshold must lie strictly
    above the (k+1)-th highest different-pair score: anything at or below it would accept
    k+1 negatives (or more, on ties). The returned threshold is the midpoint between that
    score and the next higher score, so it generalises like ``best_threshold``'s. Returns
    (tar, threshold).
    """
    s, y = _as_pairs(scores, same)
    n_pos, n_neg = _require_both_classes(y)
    if not 0.0 <= far <= 1.0:
        raise ValueError(f"far must be in [0, 1], got {far}")
    k = math.floor(far * n_neg + _FAR_EPS)
    if k >= n_neg:
        threshold = float(s.min())  # every pair accepted; FAR = 1 <= far
    else:
        neg_desc = np.sort(s[~y])[::-1]
        cutoff = float(neg_desc[k])
        above = s[s > cutoff]
        if above.size:
            threshold = _between(cutoff, float(above.min()))
        else:
            threshold = float(np.nextafter(cutoff, np.inf))
    tar = np.count_nonzero(s[y] >= threshold) / n_pos
    return float(tar), threshold


# --------------------------------------------------------------------------- identification


def _label_index(labels: Sequence[object]) -> tuple[list[object], dict[object, int]]:
    """Sorted distinct labels and their positions, for order-independent results."""
    distinct = sorted(set(labels), key=str)
    return distinct, {lab: i for i, lab in enumerate(distinct)}


def identification(
    gallery: np.ndarray,
    gallery_labels: Sequence[object],
    probes: np.ndarray,
    probe_labels: Sequence[object],
    ranks: Sequence[int] = (1, 5),
) -> dict[int, float]:
    """Closed-set rank-k identification rates, ``{k: rate}``.

    Each identity scores the best cosine similarity among its gallery images; a probe is
    correct at rank k when its identity is among the k best-scoring identities. Ties count
    against the probe (rank = number of identities scoring >= the true one), so the result
    never depends on gallery order. Every probe's label must be enrolled in the gallery:
    an unenrolled probe in a closed-set measurement is a protocol bug, not a miss.
    """
    g = _unit_rows(gallery, "gallery")
    p = _unit_rows(probes, "probes")
    if len(gallery_labels) != g.shape[0]:
        raise ValueError(f"{len(gallery_labels)} gallery labels for {g.shape[0]} gallery rows")
    if len(probe_labels) != p.shape[0]:
        raise ValueError(f"{len(probe_labels)} probe labels for {p.shape[0]} probe rows")
    if g.shape[1] != p.shape[1]:
        raise ValueError(f"gallery dim {g.shape[1]} != probe dim {p.shape[1]}")
    ks = [int(k) for k in ranks]
    if not ks or min(ks) < 1:
        raise ValueError(f"ranks must be positive integers, got {list(ranks)}")
    _, index = _label_index(gallery_labels)
    missing = [lab for lab in probe_labels if lab not in index]
    if missing:
        raise ValueError(
            f"{len(missing)} probes have labels not in the gallery, e.g. {missing[0]!r}"
        )

    g_idx = np.array([index[lab] for lab in gallery_labels], dtype=np.int64)
    order = np.argsort(g_idx, kind="stable")
    g_sorted = g[order]
    starts = np.flatnonzero(np.diff(g_idx[order], prepend=-1))  # first column of each label
    true_idx = np.array([index[lab] for lab in probe_labels], dtype=np.int64)

    rank = np.empty(p.shape[0], dtype=np.int64)
    for lo in range(0, p.shape[0], _PROBE_BLOCK):
        hi = min(lo + _PROBE_BLOCK, p.shape[0])
        per_label = np.maximum.reduceat(p[lo:hi] @ g_sorted.T, starts, axis=1)
        true_score = per_label[np.arange(hi - lo), true_idx[lo:hi]]
        rank[lo:hi] = np.count_nonzero(per_label >= true_score[:, None], axis=1)
    return {k: float(np.count_nonzero(rank <= k) / rank.size) for k in ks}


def best_gallery_scores(gallery: np.ndarray, probes: np.ndarray) -> np.ndarray:
    """Each probe's highest cosine similarity to any gallery row (float64, shape (P,)).

    Exposed so callers can sweep false-match thresholds without re-scoring.
    """
    g = _unit_rows(gallery, "gallery")
    p = _unit_rows(probes, "probes")
    if g.shape[1] != p.shape[1]:
        raise ValueError(f"gallery dim {g.shape[1]} != probe dim {p.shape[1]}")
    best = np.empty(p.shape[0], dtype=np.float64)
    for lo in range(0, p.shape[0], _PROBE_BLOCK):
        hi = min(lo + _PROBE_BLOCK, p.shape[0])
        best[lo:hi] = (p[lo:hi] @ g.T).max(axis=1)
    return best


def false_match_rate(
    gallery: np.ndarray, probes_not_enrolled: np.ndarray, threshold: float
) -> float:
    """Fraction of probes of unenrolled people whose best gallery score is >= threshold.

    In open-set search any such hit is a wrong identity returned to the user.
    """
    best = best_gallery_scores(gallery, probes_not_enrolled)
    return float(np.count_nonzero(best >= threshold) / best.size)


@dataclass(frozen=True, slots=True)
class GallerySplit:
    """Row indices (into the caller's per-image lists) of an open-set identification split."""

    gallery: np.ndarray
    """One image per enrolled identity: its first path in sorted order."""
    enrolled_probes: np.ndarray
    """Remaining images of enrolled identities: scored for rank-k identification."""
    unenrolled_probes: np.ndarray
    """Images of people with a single image (not enrolled): scored for the false match rate."""


def split_gallery(labels: Sequence[str], paths: Sequence[str]) -> GallerySplit:
    """Deterministic open-set split of a labelled image set (e.g. ``Person/*.jpg`` folders).

    Protocol (every image is used exactly once):

    1. Each identity with two or more images is *enrolled*: its first image in sorted path
       order is its one gallery image, its other images are probes for rank-k identification.
    2. Each identity with a single image is *not enrolled*: that image is a probe of a person
       who is not in the gallery, whose best gallery score should stay below the match
       threshold, which ``false_match_rate`` measures.

    Everything depends only on names and paths, never on input order or randomness, so one
    embedding pass over the folder yields reproducible rank-k and false-match numbers.
    """
    if len(labels) != len(paths):
        raise ValueError(f"{len(labels)} labels for {len(paths)} paths")
    if not labels:
        raise ValueError("no images to split")
    _, index = _label_index(labels)
    by_person: dict[int, list[int]] = {}
    for row, lab in enumerate(labels):
        by_person.setdefault(index[lab], []).append(row)
    gallery: list[int] = []
    enrolled: list[int] = []
    unenrolled: list[int] = []
    for person in sorted(by_person):
        rows = sorted(by_person[person], key=lambda r: (str(paths[r]), r))
        if len(rows) == 1:
            unenrolled.extend(rows)
        else:
            gallery.append(rows[0])
            enrolled.extend(rows[1:])

    def as_idx(rows: list[int]) -> np.ndarray:
        return np.asarray(rows, dtype=np.int64)

    return GallerySplit(as_idx(gallery), as_idx(enrolled), as_idx(unenrolled))


def open_set_report(
    embeddings: np.ndarray,
    labels: Sequence[str],
    paths: Sequence[str],
    threshold: float,
    ranks: Sequence[int] = (1, 5),
    also_at: Sequence[float] = (),
) -> dict[str, Any]:
    """Rank-k rates and false match rate from one embedding per image, via ``split_gallery``.

    Keys: ``rank{k}`` for each k in ``ranks``, ``false_match_rate`` (at ``threshold``),
    ``false_match_rate_at`` (threshold -> rate, for each of ``also_at``: 1:N search needs a
    stricter threshold than 1:1 verification, and this shows how much), and the counts
    ``n_gallery``, ``n_probes``, ``n_unenrolled`` (as floats) so a report can say what the
    rates are over.
    """
    e = np.asarray(embeddings)
    if e.ndim != 2 or e.shape[0] != len(labels):
        raise ValueError(f"embeddings shape {e.shape} does not match {len(labels)} labels")
    split = split_gallery(labels, paths)
    if split.enrolled_probes.size == 0:
        raise ValueError("no enrolled identity has a second image to use as a probe")
    if split.unenrolled_probes.size == 0:
        raise ValueError("no identity with a single image to serve as a non-enrolled probe")
    gallery = e[split.gallery]
    g_labels = [labels[i] for i in split.gallery]
    rates = identification(
        gallery,
        g_labels,
        e[split.enrolled_probes],
        [labels[i] for i in split.enrolled_probes],
        ranks,
    )
    strangers = e[split.unenrolled_probes]
    report: dict[str, Any] = {f"rank{k}": v for k, v in rates.items()}
    report["false_match_rate"] = false_match_rate(gallery, strangers, threshold)
    report["false_match_rate_at"] = {
        str(t): false_match_rate(gallery, strangers, t) for t in also_at
    }
    report["n_gallery"] = float(split.gallery.size)
    report["n_probes"] = float(split.enrolled_probes.size)
    report["n_unenrolled"] = float(split.unenrolled_probes.size)
    return report
