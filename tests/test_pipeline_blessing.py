"""The blessing refuses a model no better than chance by default, and says why."""

from __future__ import annotations

import types

from pipeline.settings import load_config, with_overrides
from pipeline.stages.evaluate import _bless

BALANCED = [36] * 10  # 360 test examples, 10 classes: chance is 0.1, the bar 0.1 + 3 * 0.0158


def _row(clean: float, robust: float = 0.05, masking_passed: bool = True):
    return types.SimpleNamespace(clean_accuracy=clean, robust_accuracy={"pgd40": robust}, masking_passed=masking_passed)


def test_a_constant_or_chance_model_is_refused_with_the_cause_named():
    config = load_config("quickstart")  # default thresholds: 0
    for clean in (0.1, 0.14):
        blessed, reasons = _bless(_row(clean), config, BALANCED)
        assert not blessed
        (refusal,) = [reason for reason in reasons if reason.startswith("FAIL")]
        assert refusal.endswith("constant or chance predictions") and "chance (0.1000" in refusal


def test_a_model_above_chance_is_blessed_and_the_check_can_be_turned_off():
    config = load_config("quickstart")
    blessed, reasons = _bless(_row(0.2), config, BALANCED)
    assert blessed and any("above chance" in reason for reason in reasons)
    # A skewed split: always answering the majority class scores 0.5; 0.52 is no better than that.
    assert not _bless(_row(0.52), config, [180, 20, 20, 20, 20, 20, 20, 20, 20, 20])[0]
    assert _bless(_row(0.1), with_overrides(config, ["evaluate.require_above_chance=false"]), BALANCED)[0]
