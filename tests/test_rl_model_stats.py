"""Model-level statistics on constructed inputs whose answers are worked out by hand."""
import numpy as np
import pandas as pd
import pytest

from soo_interp.errors import ConfigError
from soo_interp.rl.model_stats import (
    class_test,
    class_tests,
    loo_accuracy,
    signflip_test,
    within_base_interval,
)


def test_class_test_on_four_models_matches_the_hand_enumeration():
    # deceptive {3, 4}, honest {1, 2}: of the 6 labelings, only {3, 4} has a difference >= 2,
    # and only {3, 4} and {1, 2} are classified perfectly leaving one model out (the rule
    # learns its direction, so the mirror labeling also scores 1)
    r = class_test([1.0, 2.0, 3.0, 4.0], [False, False, True, True])
    assert r["diff"] == 2.0 and r["p_diff"] == pytest.approx(1 / 6)
    assert r["loo_accuracy"] == 1.0 and r["p_loo"] == pytest.approx(2 / 6)
    assert r["exact"] and r["labelings"] == 6 and (r["n_deceptive"], r["n_honest"]) == (2, 2)


def test_loo_accuracy_by_hand_with_a_tie_and_misses():
    v = np.array([1.0, 2.0, 3.0, 4.0])
    # deceptive {1, 3}: leaving 1 out, deceptive mean 3 and honest mean 3 -> a tie (0.5);
    # leaving 3 out: 1 vs 3 -> 3 is nearer honest (wrong); 2: 2 vs 4 -> nearer deceptive
    # (wrong); 4: 2 vs 2 -> |4-2| both, a tie (0.5) => (0.5 + 0 + 0 + 0.5) / 4
    assert loo_accuracy(v, [True, False, True, False])[0] == 0.25
    # the direction is learned: labels flipped give the same accuracy
    assert loo_accuracy(v, [[False, False, True, True], [True, True, False, False]]).tolist() \
        == [1.0, 1.0]
    with pytest.raises(ConfigError, match="2 models of each class"):
        loo_accuracy(v, [True, False, False, False])


def test_eight_vs_eight_complete_separation_has_p_one_over_12870():
    vals = np.r_[np.arange(8), np.arange(8) + 100.0]
    r = class_test(vals, np.r_[np.zeros(8, bool), np.ones(8, bool)])
    assert r["labelings"] == 12870 and r["p_diff"] == pytest.approx(1 / 12870)
    assert r["p_loo"] == pytest.approx(2 / 12870)  # it and its mirror


def test_class_tests_groups_and_metrics():
    models = pd.DataFrame({"baseline": ["honest", "honest", "deceptive", "deceptive"] * 2,
                           "episodes": [10] * 4 + [20] * 4,
                           "trap_rate": [0.1, 0.2, 0.3, 0.4, 0.4, 0.3, 0.2, 0.1]})
    t = class_tests(models, ["trap_rate"], by=["episodes"])
    assert t["episodes"].tolist() == [10, 20]
    assert t["diff"].round(6).tolist() == [0.2, -0.2]
    assert t["p_diff"].round(6).tolist() == [round(1 / 6, 6), 1.0]


def test_signflip_by_hand():
    r = signflip_test([1.0, 2.0, 3.0])  # 8 sign patterns; only all-plus reaches mean 2
    assert r["mean_change"] == 2.0 and r["p_increase"] == 1 / 8 and r["p_decrease"] == 1.0
    assert r["p_two_sided"] == 2 / 8 and r["exact"]
    # mean -0.375: a pattern's sum is 4.5 - 2 x (|d| of the minus signs), <= -1.5 when the minus
    # signs cover >= 3 of {1, 1, 2, 0.5}: {1,2} twice, {1,1,2}, {1,2,0.5} twice, all -> 6 of 16
    r = signflip_test([-1.0, 1.0, -2.0, 0.5])
    assert r["p_decrease"] == 6 / 16


def test_within_base_interval_by_hand():
    ci = pd.DataFrame({
        "metric": ["near_red_rate"] * 4 + ["trap_rate"] * 2,
        "model": ["m0", "m0", "m0", "m1", "m0", "m0"],
        "condition": ["base", "soo", "plain", "base", "base", "soo"],
        "mean": [0.30, 0.26, 0.03, 0.50, 0.4, 0.9],
        "ci_low": [0.25, 0.2, 0.0, 0.45, 0.3, 0.8],
        "ci_high": [0.35, 0.3, 0.1, 0.55, 0.5, 1.0]})
    out = within_base_interval(ci, ["near_red_rate"])
    assert list(out["condition"]) == ["soo", "plain"] and set(out["metric"]) == {"near_red_rate"}
    assert list(out["position"]) == ["within", "below"]
    assert list(out["base_ci_low"]) == [0.25, 0.25] and list(out["base_mean"]) == [0.30, 0.30]
    assert list(within_base_interval(ci, ["trap_rate"])["position"]) == ["above"]
    with pytest.raises(ConfigError, match="base"):
        within_base_interval(ci[ci["condition"] != "base"], ["trap_rate"])
