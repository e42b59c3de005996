"""Tests for faceledger.evaluate.metrics: hand-computed cases plus brute-force cross-checks."""

from __future__ import annotations

import math

import numpy as np
import pytest

from faceledger.evaluate.metrics import (
    accuracy_at,
    best_gallery_scores,
    best_threshold,
    false_match_rate,
    folds_from_layout,
    identification,
    kfold_accuracy,
    lfw_folds,
    open_set_report,
    roc_auc,
    split_gallery,
    tar_at_far,
)


def brute_auc(scores: np.ndarray, same: np.ndarray) -> float:
    """O(n^2) reference: P(pos > neg) + 0.5 * P(pos == neg)."""
    pos = scores[same.astype(bool)]
    neg = scores[~same.astype(bool)]
    diff = pos[:, None] - neg[None, :]
    return float(((diff > 0).sum() + 0.5 * (diff == 0).sum()) / diff.size)


def brute_best_accuracy(scores: np.ndarray, same: np.ndarray) -> float:
    """Accuracy at every possible decision boundary, by direct evaluation."""
    cands = np.concatenate((np.unique(scores), [np.inf]))
    return max(accuracy_at(scores, same, t) for t in cands)


def unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


# --------------------------------------------------------------------------- verification


def test_separable_pairs() -> None:
    scores = np.array([0.1, 0.2, 0.8, 0.9])
    same = np.array([0, 0, 1, 1])
    t = best_threshold(scores, same)
    assert t == pytest.approx(0.5)  # middle of the gap (0.2, 0.8]
    assert accuracy_at(scores, same, t) == 1.0
    assert roc_auc(scores, same) == 1.0


def test_threshold_is_inclusive() -> None:
    scores = np.array([0.5, 0.4])
    same = np.array([True, False])
    assert accuracy_at(scores, same, 0.5) == 1.0
    assert accuracy_at(scores, same, np.nextafter(0.5, 1.0)) == 0.5


def test_best_threshold_picks_widest_plateau_middle() -> None:
    # Best accuracy 5/6 on two plateaus: t in (0.3, 0.6] and t in (0.7, 0.75].
    scores = np.array([0.1, 0.3, 0.6, 0.7, 0.75, 0.9])
    same = np.array([0, 0, 1, 0, 1, 1])
    accs = {t: accuracy_at(scores, same, t) for t in (0.2, 0.45, 0.65, 0.72, 0.8)}
    best = max(accs.values())
    assert best == pytest.approx(5 / 6)
    assert {t for t, a in accs.items() if a == best} == {0.45, 0.72}
    # Plateaus (0.3, 0.6] (width 0.3) and (0.7, 0.75] (width 0.05): the wider wins.
    assert best_threshold(scores, same) == pytest.approx(0.45)


def test_best_threshold_tie_goes_to_lowest_plateau() -> None:
    # Inverted single pair: accept-all and reject-all both give 1/2 with equal width.
    t = best_threshold(np.array([0.1, 0.9]), np.array([1, 0]))
    assert accuracy_at(np.array([0.1, 0.9]), np.array([1, 0]), t) == 0.5
    assert t < 0.1


def test_best_threshold_matches_brute_force() -> None:
    rng = np.random.default_rng(1)
    for _ in range(20):
        n = int(rng.integers(2, 60))
        scores = np.round(rng.normal(size=n), 1)  # rounding forces ties
        same = rng.random(n) < 0.5
        t = best_threshold(scores, same)
        assert accuracy_at(scores, same, t) == pytest.approx(brute_best_accuracy(scores, same))


def test_best_threshold_adjacent_floats() -> None:
    lo = 0.5
    hi = float(np.nextafter(lo, 1.0))
    scores = np.array([lo, hi])
    same = np.array([0, 1])
    t = best_threshold(scores, same)
    assert lo < t <= hi
    assert accuracy_at(scores, same, t) == 1.0


def test_kfold_gaussian_matches_theory() -> None:
    # Same ~ N(+1, 1), different ~ N(-1, 1), equal priors: optimum threshold 0 with
    # accuracy Phi(1) = 0.8413.
    rng = np.random.default_rng(0)
    n = 6000
    same = np.tile(np.repeat([True, False], 300), n // 600)
    scores = np.where(same, 1.0, -1.0) + rng.normal(size=n)
    folds = folds_from_layout(n)
    mean, std, thresholds = kfold_accuracy(scores, same, folds)
    phi1 = 0.5 * (1 + math.erf(1 / math.sqrt(2)))
    assert mean == pytest.approx(phi1, abs=0.015)
    assert 0.0 < std < 0.05
    assert len(thresholds) == 10
    assert all(abs(t) < 0.15 for t in thresholds)


def test_kfold_uses_held_out_threshold() -> None:
    # On all pairs, t in (0.1, 0.2] scores 5/6. Held out, every fold scores 1/2:
    # fold 0 (0.3 neg, 0.7 pos) gets t = 0.15 from folds 1-2 and accepts its negative;
    # folds 1-2 get t = 0.5 (the widest of two 3/4 plateaus) and reject their 0.2 positive.
    scores = np.array([0.3, 0.7, 0.1, 0.2, 0.1, 0.2])
    same = np.array([0, 1, 0, 1, 0, 1])
    folds = np.array([0, 0, 1, 1, 2, 2])
    assert accuracy_at(scores, same, best_threshold(scores, same)) == pytest.approx(5 / 6)
    mean, std, thresholds = kfold_accuracy(scores, same, folds)
    assert thresholds == pytest.approx([0.15, 0.5, 0.5])
    assert mean == 0.5
    assert std == 0.0


def test_kfold_needs_two_folds() -> None:
    with pytest.raises(ValueError, match="2 distinct folds"):
        kfold_accuracy(np.array([0.1, 0.9]), np.array([0, 1]), np.array([0, 0]))


def test_lfw_folds_contiguous_equal() -> None:
    f = lfw_folds(6000)
    assert np.array_equal(np.bincount(f), np.full(10, 600))
    assert np.all(np.diff(f) >= 0)
    g = lfw_folds(25, 10)
    assert set(np.bincount(g)) <= {2, 3}
    with pytest.raises(ValueError):
        lfw_folds(5, 10)


def test_folds_from_layout() -> None:
    f = folds_from_layout(5400)  # faces-dev pairs.csv: 9 folds of 600
    assert f.max() == 8
    assert f[599] == 0 and f[600] == 1 and f[-1] == 8
    # Not a 600 multiple: 10 stratified contiguous folds.
    same = np.array([1] * 40 + [0] * 60)
    g = folds_from_layout(100, same)
    for k in range(10):
        assert np.count_nonzero(g[same == 1] == k) == 4
        assert np.count_nonzero(g[same == 0] == k) == 6
    assert np.all(np.diff(g[same == 1]) >= 0)
    # Without labels: plain blocks; a single 600 block cannot be k-fold, so it falls back.
    assert np.array_equal(folds_from_layout(600), lfw_folds(600, 10))


def test_auc_inverted_ties_and_hand_computed() -> None:
    assert roc_auc(np.array([0.9, 0.8, 0.2, 0.1]), np.array([0, 0, 1, 1])) == 0.0
    assert roc_auc(np.full(6, 0.5), np.array([1, 1, 1, 0, 0, 0])) == 0.5
    # pos 0.9 beats all 3 negs; 0.6 beats 0.4 and 0.3; 0.4 beats 0.3 and ties 0.4:
    # (3 + 2 + 1.5) / 9.
    scores = np.array([0.9, 0.6, 0.4, 0.7, 0.4, 0.3])
    same = np.array([1, 1, 1, 0, 0, 0])
    assert roc_auc(scores, same) == pytest.approx(6.5 / 9)


def test_auc_matches_brute_force() -> None:
    rng = np.random.default_rng(2)
    for _ in range(20):
        n = int(rng.integers(2, 300))
        scores = np.round(rng.normal(size=n), int(rng.integers(0, 3)))
        same = rng.random(n) < 0.4
        same[0], same[1] = True, False
        assert roc_auc(scores, same) == pytest.approx(brute_auc(scores, same), abs=1e-12)


def test_tar_at_far_boundary_count() -> None:
    neg = np.array([0.95, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1])
    pos = np.array([0.97, 0.92, 0.85, 0.75])
    scores = np.concatenate((pos, neg))
    same = np.concatenate((np.ones(4), np.zeros(10)))
    # far = 0.2 allows exactly 2 of 10 false accepts: threshold above 0.8, below 0.85.
    tar, t = tar_at_far(scores, same, 0.2)
    assert 0.8 < t <= 0.85 and t == pytest.approx(0.825)
    assert tar == 0.75
    assert np.count_nonzero(neg >= t) == 2
    # Just below 0.2 allows only 1: threshold above 0.9.
    tar, t = tar_at_far(scores, same, 0.19999)
    assert 0.9 < t <= 0.92
    assert tar == 0.5
    # far = 0 allows none; far = 1 accepts everything.
    tar, t = tar_at_far(scores, same, 0.0)
    assert t > 0.95 and tar == 0.25
    assert tar_at_far(scores, same, 1.0) == (1.0, 0.1)


def test_tar_at_far_ties_among_negatives() -> None:
    # 2 false accepts allowed, but the 2nd and 3rd highest negatives tie at 0.8, so the
    # threshold must clear both: only 1 false accept is possible.
    neg = np.array([0.9, 0.8, 0.8, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1])
    pos = np.array([0.8, 0.85, 0.95])
    scores = np.concatenate((pos, neg))
    same = np.concatenate((np.ones(3), np.zeros(10)))
    tar, t = tar_at_far(scores, same, 0.2)
    assert 0.8 < t <= 0.85
    assert np.count_nonzero(neg >= t) == 1
    assert tar == pytest.approx(2 / 3)  # the 0.8 positive ties a rejected negative


def test_tar_at_far_lfw_scale() -> None:
    # 2,700 negatives at FAR 1e-3: floor(2.7) = 2 false accepts at most.
    rng = np.random.default_rng(3)
    neg = rng.normal(size=2700)
    pos = rng.normal(loc=3.0, size=2700)
    scores = np.concatenate((pos, neg))
    same = np.concatenate((np.ones(2700), np.zeros(2700)))
    tar, t = tar_at_far(scores, same, 1e-3)
    third = np.sort(neg)[-3]
    assert np.count_nonzero(neg >= t) == 2
    assert t > third
    assert tar == pytest.approx(np.count_nonzero(pos > third) / 2700)


def test_tar_at_far_float_product_guard() -> None:
    # 0.29 * 100 == 28.999999999999996 in floats; 29 false accepts are still allowed.
    neg = np.linspace(1.0, 0.01, 100)
    scores = np.concatenate(([2.0], neg))
    same = np.concatenate(([1], np.zeros(100)))
    _, t = tar_at_far(scores, same, 0.29)
    assert np.count_nonzero(neg >= t) == 29


@pytest.mark.parametrize(
    "fn",
    [
        lambda s, y: roc_auc(s, y),
        lambda s, y: best_threshold(s, y),
        lambda s, y: accuracy_at(s, y, 0.5),
        lambda s, y: tar_at_far(s, y, 0.1),
    ],
)
def test_empty_inputs_raise(fn) -> None:
    with pytest.raises(ValueError, match="empty"):
        fn(np.array([]), np.array([]))


def test_invalid_inputs_raise() -> None:
    with pytest.raises(ValueError, match="both"):
        roc_auc(np.array([0.1, 0.2]), np.array([1, 1]))
    with pytest.raises(ValueError, match="entries"):
        accuracy_at(np.array([0.1, 0.2]), np.array([1]), 0.5)
    with pytest.raises(ValueError, match="NaN"):
        best_threshold(np.array([0.1, np.nan]), np.array([1, 0]))
    with pytest.raises(ValueError, match="0/1"):
        best_threshold(np.array([0.1, 0.2]), np.array([1, 2]))
    with pytest.raises(ValueError, match="far"):
        tar_at_far(np.array([0.1, 0.2]), np.array([1, 0]), 1.5)


# --------------------------------------------------------------------------- identification


def test_identification_hand_built_ranks() -> None:
    eye = np.eye(12)
    gallery = eye[:10]
    labels = [f"p{i}" for i in range(10)]
    probes = np.stack(
        [
            eye[0],  # rank 1
            0.5 * eye[1] + eye[2],  # p2 outscores p1: rank 2
            0.1 * eye[2] + eye[3:9].T @ np.linspace(1.0, 0.5, 6) + eye[11],  # 6 above: rank 7
            eye[3] + 0.2 * eye[10],  # rank 1
        ]
    )
    rates = identification(gallery, labels, probes, ["p0", "p1", "p2", "p3"], ranks=(1, 5, 7))
    assert rates == {1: 0.5, 5: 0.75, 7: 1.0}


def test_identification_ties_count_against_probe() -> None:
    eye = np.eye(3)
    probes = (eye[0] + eye[1])[None, :]
    rates = identification(eye[:2], ["a", "b"], probes, ["a"], ranks=(1, 2))
    assert rates == {1: 0.0, 2: 1.0}


def test_identification_uses_best_image_per_identity() -> None:
    eye = np.eye(4)
    # "a" has two gallery images; its second one matches the probe exactly.
    gallery = np.stack([eye[0], eye[1], 0.6 * eye[1] + 0.8 * eye[2], eye[2]])
    g_labels = ["a", "b", "b", "a"]
    rates = identification(gallery, g_labels, eye[2][None, :], ["a"], ranks=(1,))
    assert rates == {1: 1.0}


def test_identification_clustered_matches_brute_force() -> None:
    rng = np.random.default_rng(4)
    n_people, dim = 40, 16
    centers = unit(rng.normal(size=(n_people, dim)))
    gallery = unit(centers + 0.3 * rng.normal(size=centers.shape))
    who = rng.integers(0, n_people, size=300)
    probes = unit(centers[who] + 0.6 * rng.normal(size=(300, dim)))
    g_labels = [f"id{i:02d}" for i in range(n_people)]
    p_labels = [g_labels[i] for i in who]

    sims = probes @ gallery.T
    order = np.argsort(-sims, axis=1)
    expected = {k: float(np.mean([who[i] in order[i, :k] for i in range(300)])) for k in (1, 5)}
    got = identification(gallery, g_labels, probes, p_labels)
    assert got == pytest.approx(expected)
    assert 0.0 < got[1] < got[5] <= 1.0
    # Tight clusters identify perfectly; float32 and unnormalised input give the same answer.
    tight = (centers[who] + 0.01 * rng.normal(size=(300, dim))).astype(np.float32) * 7.0
    assert identification(centers, g_labels, tight, p_labels) == {1: 1.0, 5: 1.0}


def test_identification_rejects_unenrolled_and_empty() -> None:
    eye = np.eye(3)
    with pytest.raises(ValueError, match="not in the gallery"):
        identification(eye[:2], ["a", "b"], eye[2:], ["c"])
    with pytest.raises(ValueError, match="empty"):
        identification(eye[:2], ["a", "b"], np.empty((0, 3)), [])
    with pytest.raises(ValueError, match="zero-length"):
        identification(eye[:2], ["a", "b"], np.zeros((1, 3)), ["a"])


def test_false_match_rate_at_threshold() -> None:
    eye = np.eye(6)
    gallery = eye[:2]
    # Best gallery cosines: 0.9, 0.5 (against e1), 0.3.
    probes = np.stack(
        [
            0.9 * eye[0] + math.sqrt(1 - 0.81) * eye[5],
            0.5 * eye[1] + 0.2 * eye[0] + math.sqrt(1 - 0.29) * eye[4],
            0.3 * eye[0] + math.sqrt(1 - 0.09) * eye[3],
        ]
    )
    assert best_gallery_scores(gallery, probes) == pytest.approx([0.9, 0.5, 0.3])
    assert false_match_rate(gallery, probes, 0.4) == pytest.approx(2 / 3)
    assert false_match_rate(gallery, probes, 0.2) == 1.0
    assert false_match_rate(gallery, probes, 0.95) == 0.0
    with pytest.raises(ValueError, match="empty"):
        false_match_rate(gallery, np.empty((0, 6)), 0.5)


def test_split_gallery_protocol() -> None:
    rows = [
        ("Bob", "Bob/Bob_0002.jpg"),
        ("Alice", "Alice/Alice_0003.jpg"),
        ("Carol", "Carol/Carol_0001.jpg"),
        ("Alice", "Alice/Alice_0001.jpg"),
        ("Dan", "Dan/Dan_0001.jpg"),
        ("Bob", "Bob/Bob_0001.jpg"),
        ("Alice", "Alice/Alice_0002.jpg"),
    ]
    labels = [r[0] for r in rows]
    paths = [r[1] for r in rows]
    split = split_gallery(labels, paths)
    # Alice and Bob have several images: enrolled. Carol and Dan have one: not enrolled.
    assert [paths[i] for i in split.gallery] == ["Alice/Alice_0001.jpg", "Bob/Bob_0001.jpg"]
    assert [paths[i] for i in split.enrolled_probes] == [
        "Alice/Alice_0002.jpg",
        "Alice/Alice_0003.jpg",
        "Bob/Bob_0002.jpg",
    ]
    assert sorted(paths[i] for i in split.unenrolled_probes) == [
        "Carol/Carol_0001.jpg",
        "Dan/Dan_0001.jpg",
    ]
    # Input order does not matter.
    perm = [6, 5, 4, 3, 2, 1, 0]
    again = split_gallery([labels[i] for i in perm], [paths[i] for i in perm])
    assert [perm[i] for i in again.gallery] == list(split.gallery)
    with pytest.raises(ValueError):
        split_gallery([], [])


def test_open_set_report_one_pass() -> None:
    rng = np.random.default_rng(5)
    n_people, dim = 20, 32
    centers = unit(rng.normal(size=(n_people, dim)))
    labels, paths, embs = [], [], []
    for p in range(n_people):
        for j in range(3 if p < 10 else 1):
            labels.append(f"Person_{p:02d}")
            paths.append(f"Person_{p:02d}/Person_{p:02d}_{j + 1:04d}.jpg")
            embs.append(centers[p] + 0.05 * rng.normal(size=dim))
    report = open_set_report(np.array(embs), labels, paths, threshold=0.6)
    assert report["rank1"] == 1.0 and report["rank5"] == 1.0
    assert report["false_match_rate"] == 0.0  # random directions in 32-D stay well below 0.6
    assert report["n_gallery"] == 10 and report["n_probes"] == 20
    assert report["n_unenrolled"] == 10
    assert open_set_report(np.array(embs), labels, paths, threshold=-1.0)["false_match_rate"] == 1
