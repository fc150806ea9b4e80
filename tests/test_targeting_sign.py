"""A personalised target whose own point is not anticorrelated with the sgACC is called poor, not moved."""

from __future__ import annotations

import pandas as pd

from trdnet.targeting import flag_not_anticorrelated


def test_a_target_point_correlated_with_the_sgacc_is_poor_with_a_note_and_stays_where_it_is():
    table = pd.DataFrame({
        "target": ["personalised", "personalised_peak", "personalised_cluster", "beam_f3"],
        "x": [-40.0, -38.0, -36.0, -37.0], "r_sgacc": [0.38, -0.31, 0.0, 0.2],
        "reliability": ["good", "good", "fair", ""], "note": ["", "", "few voxels", ""]})
    flagged = flag_not_anticorrelated(table)
    assert list(flagged["reliability"]) == ["poor", "good", "poor", ""]  # a literature site is not judged
    assert flagged.loc[0, "note"] == "the target point is not anticorrelated with the sgACC (r_sgacc +0.38 >= 0)"
    assert flagged.loc[2, "note"].endswith("(r_sgacc +0.00 >= 0); few voxels")
    assert list(flagged["x"]) == list(table["x"]) and list(table["reliability"]) == ["good", "good", "fair", ""]
