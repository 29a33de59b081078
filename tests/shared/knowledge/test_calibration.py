"""What a handoff threshold trades: answerable questions handed off against out-of-scope ones
answered, as `support-assistant calibrate` prints it."""

import numpy as np

from shared.knowledge.calibration import Calibration, trade_off

# confidence 0.5 at cosine 0.5, rising steeply: cosine 0.45 -> 0.38, 0.55 -> 0.62
CURVE = Calibration(slope=10.0, intercept=-5.0)


def test_each_threshold_shows_what_it_hands_off_and_what_it_lets_through() -> None:
    answerable = np.array([0.45, 0.55, 0.7, 0.9])
    out_of_scope = np.array([0.2, 0.45, 0.55])
    header, low, high = trade_off(
        CURVE, inside=answerable, outside=out_of_scope, thresholds=(0.3, 0.6)
    )
    assert "answerable handed off" in header and "out of scope answered" in header
    # 0.3: everything from cosine 0.45 up is answered
    assert low.split("|")[1].split() == ["0/4", "0.0%"]
    assert low.split("|")[2].split() == ["2/3", "66.7%"]
    # 0.6: cosine 0.45 is handed off, 0.55 (0.62) still answered
    assert high.split("|")[1].split() == ["1/4", "25.0%"]
    assert high.split("|")[2].split() == ["1/3", "33.3%"]
