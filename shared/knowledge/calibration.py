"""How sure the service is that its knowledge base answers a question: a logistic curve over the
best retrieval cosine, fitted for the base it serves (`support-assistant calibrate`) and kept
beside it (`calibration.json` in the knowledge folder)."""

import json
import math
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from shared.core.config import Settings

if TYPE_CHECKING:
    from shared.knowledge.store import KnowledgeBase

CALIBRATION_FILE = "calibration.json"


@dataclass(frozen=True)
class Calibration:
    slope: float
    intercept: float
    fitted_on: str = ""  # what the curve was fitted on, for the people who read the file

    def confidence(self, top_cosine: float) -> float:
        """P(the base answers the question) for the best cosine of its retrieval."""
        return 1 / (1 + math.exp(-(self.slope * top_cosine + self.intercept)))

    def threshold_cosine(self, threshold: float) -> float:
        """The cosine at which confidence equals `threshold`."""
        return (math.log(threshold / (1 - threshold)) - self.intercept) / self.slope


def effective_calibration(base: "KnowledgeBase", settings: Settings) -> Calibration:
    """The curve in use: CONFIDENCE_SLOPE/INTERCEPT when set, else the one fitted for this
    base, else the defaults."""
    explicit = {"confidence_slope", "confidence_intercept"} & settings.model_fields_set
    if base.calibration is not None and not explicit:
        return base.calibration
    return Calibration(settings.confidence_slope, settings.confidence_intercept, "settings")


def calibration_path(knowledge_path: Path) -> Path:
    """Where the curve of a knowledge folder (or file) is kept."""
    if knowledge_path.is_dir():
        return knowledge_path / CALIBRATION_FILE
    return knowledge_path.with_name(f"{knowledge_path.stem}.{CALIBRATION_FILE}")


def load_calibration(path: Path) -> Calibration | None:
    """The curve kept at `path`, or None when there is none (or it cannot be read)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        slope, intercept = float(data["slope"]), float(data["intercept"])
        return Calibration(slope, intercept, str(data.get("fitted_on", "")))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def save_calibration(path: Path, calibration: Calibration) -> None:
    """Write the curve atomically (a reader never sees half a file)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(asdict(calibration), indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)


def top_cosines(base: "KnowledgeBase", questions: list[str]) -> npt.NDArray[np.float64]:
    """The feature the curve reads: each question's best retrieval cosine."""
    values = []
    for question in questions:
        hits = base.search(question, k=1)
        values.append(hits[0].dense if hits and hits[0].dense is not None else 0.0)
    return np.array(values, dtype=np.float64)


def fit_logistic(
    x: npt.NDArray[np.float64],
    y: npt.NDArray[np.float64],
    *,
    weights: npt.NDArray[np.float64] | None = None,
    l2: float = 0.01,
) -> tuple[float, float]:
    """One-feature weighted logistic regression by Newton's method: P(y=1) = sigmoid(a*x + b).

    The L2 penalty on the slope keeps the curve finite when the classes separate perfectly."""
    w = np.ones_like(x) if weights is None else weights
    a, b = 0.0, 0.0
    for _ in range(100):
        p = 1 / (1 + np.exp(-(a * x + b)))
        s = w * p * (1 - p) + 1e-9
        gradient = np.array([np.sum(w * (p - y) * x) + l2 * a, np.sum(w * (p - y))])
        hessian = np.array([[np.sum(s * x * x) + l2, np.sum(s * x)], [np.sum(s * x), np.sum(s)]])
        step = np.linalg.solve(hessian, gradient)
        a, b = a - step[0], b - step[1]
        if np.abs(step).max() < 1e-9:
            break
    return float(a), float(b)


def fit_curve(
    inside: npt.NDArray[np.float64], outside: npt.NDArray[np.float64], *, fitted_on: str
) -> Calibration:
    """The curve separating answerable from out-of-scope cosines, both classes weighing equally."""
    x = np.concatenate([inside, outside])
    y = np.concatenate([np.ones(len(inside)), np.zeros(len(outside))])
    weights = np.where(y == 1, len(y) / (2 * len(inside)), len(y) / (2 * len(outside)))
    slope, intercept = fit_logistic(x, y, weights=weights)
    return Calibration(round(slope, 3), round(intercept, 3), fitted_on)


def describe(
    before: Calibration,
    after: Calibration,
    *,
    inside: npt.NDArray[np.float64],
    outside: npt.NDArray[np.float64],
    threshold: float,
) -> list[str]:
    """The two curves, and what moves across the threshold between them."""
    lines = [f"{'top cosine':>10} | {'before':>6} | {'after':>6}"]
    for cosine in np.arange(0.0, 0.85, 0.1):
        was, now = before.confidence(cosine), after.confidence(cosine)
        lines.append(f"{cosine:>10.1f} | {was:>6.3f} | {now:>6.3f}")
    for name, values, good in (("answerable", inside, True), ("out of scope", outside, False)):
        answered_before = np.array([before.confidence(v) >= threshold for v in values])
        answered_after = np.array([after.confidence(v) >= threshold for v in values])
        right_before = int((answered_before == good).sum())
        right_after = int((answered_after == good).sum())
        lines.append(
            f"{name} ({len(values)}): handled right {right_before} -> {right_after}; "
            f"now answered {int((~answered_before & answered_after).sum())}, "
            f"now handed off {int((answered_before & ~answered_after).sum())}"
        )
    lines.append(
        f"threshold {threshold}: cosine {before.threshold_cosine(threshold):.3f} -> "
        f"{after.threshold_cosine(threshold):.3f}"
    )
    return lines


TRADE_OFF_THRESHOLDS = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8)


def trade_off(
    calibration: Calibration,
    *,
    inside: npt.NDArray[np.float64],
    outside: npt.NDArray[np.float64],
    thresholds: Sequence[float] = TRADE_OFF_THRESHOLDS,
) -> list[str]:
    """What each HANDOFF_THRESHOLD would do with the examples under `calibration`: the share of
    answerable ones handed off against the share of out-of-scope ones answered. The confidence
    gate alone: the engine's other checks hand off some more questions of either kind."""
    lines = [f"{'threshold':>9} | {'answerable handed off':>21} | {'out of scope answered':>21}"]
    for threshold in thresholds:
        cells = []
        for values, counted in ((inside, False), (outside, True)):
            answered = np.array([calibration.confidence(v) >= threshold for v in values], bool)
            n = int((answered == counted).sum())
            share = n / len(values) if len(values) else 0.0
            cells.append(f"{n:>4}/{len(values):<4} {share:>6.1%}")
        lines.append(f"{threshold:>9.2f} | {cells[0]:>21} | {cells[1]:>21}")
    return lines
