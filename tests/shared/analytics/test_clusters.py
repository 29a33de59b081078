"""Knowledge gaps are grouped by meaning: average-linkage clustering over cosine."""

import numpy as np

from shared.analytics.service import cluster_vectors


def _unit(rows: list[list[float]]) -> np.ndarray:
    vectors = np.asarray(rows, dtype=np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def test_close_questions_group_and_a_stranger_stays_alone() -> None:
    vectors = _unit(
        [
            [1.0, 0.05, 0.0],  # insurance, asked three ways
            [0.0, 0.0, 1.0],  # something else entirely
            [0.95, 0.1, 0.0],
            [1.0, 0.0, 0.1],
            [0.1, 1.0, 0.0],  # gift cards, asked twice
            [0.0, 1.0, 0.1],
        ]
    )
    assert cluster_vectors(vectors, threshold=0.8) == [[0, 2, 3], [4, 5], [1]]


def test_the_threshold_decides() -> None:
    vectors = _unit([[1.0, 0.0], [0.8, 0.6]])  # cosine 0.8
    assert cluster_vectors(vectors, threshold=0.79) == [[0, 1]]
    assert cluster_vectors(vectors, threshold=0.81) == [[0], [1]]


def test_average_linkage_does_not_chain() -> None:
    # a~b and b~c are close, a and c are not: single linkage would chain all three.
    angles = np.radians([0.0, 35.0, 70.0])
    vectors = np.stack([np.cos(angles), np.sin(angles)], axis=1).astype(np.float32)
    groups = cluster_vectors(vectors, threshold=0.75)  # cos 35° = 0.82, cos 70° = 0.34
    assert sorted(map(len, groups)) == [1, 2]


def test_nothing_in_nothing_out() -> None:
    assert cluster_vectors(np.zeros((0, 3), dtype=np.float32), threshold=0.5) == []
