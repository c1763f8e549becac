"""The paper-experiment configs and sections: L2 defenses, Tiny-ImageNet, WMIM, transfer."""

from __future__ import annotations

import pytest

from mi_keras.evaluation import AttackSpec
from mi_keras.evaluation.attack_spec import paper_transfer_attacks
from pipeline.orchestration.stage import StageName
from pipeline.settings import ConfigError, load_config, validate, with_overrides
from pipeline.stages import all_stages


def test_l2_config_trains_every_stage_with_l2_pgd10_and_evaluates_the_l2_columns():
    linf, l2 = load_config("cifar10_paper"), load_config("cifar10_paper_l2")
    # One attack section: standard AT, the estimators and MIAT all train under it.
    assert (l2.attack.threat_model.value, l2.attack.eps, l2.attack.steps) == ("L2", 0.5, 10)
    assert l2.attack.resolved_step_size == pytest.approx(0.125)
    assert l2.evaluate.attacks == (AttackSpec.PGD40, AttackSpec.CW_L2, AttackSpec.DDN)
    assert (l2.train, l2.pretrain, l2.estimators, l2.model) == (linf.train, linf.pretrain, linf.estimators, linf.model)
    validate(with_overrides(l2, ["data.dataset=digits"]))


def test_tiny_imagenet_config_reads_the_folder_layout_and_runs_table_1s_attacks():
    config = load_config("tiny_imagenet")
    assert config.data.dataset == "tiny_imagenet:tiny-imagenet-200"
    assert config.evaluate.attacks == (AttackSpec.PGD40, AttackSpec.AUTOATTACK, AttackSpec.FWA40, AttackSpec.TI_DIM)
    assert config.model.architecture.value == "resnet18" and config.attack.eps == pytest.approx(8 / 255)


def test_transfer_stages_are_off_by_default_and_checked():
    config = load_config("quickstart")
    stages = {stage.name: stage for stage in all_stages()}
    assert not stages[StageName.SURROGATE].enabled_by_default(config)
    assert not stages[StageName.TRANSFER].enabled_by_default(config)
    enabled = with_overrides(config, ["transfer.enabled=true"])
    assert stages[StageName.TRANSFER].enabled_by_default(enabled)
    assert StageName.SURROGATE in stages[StageName.TRANSFER].upstream(enabled)
    assert paper_transfer_attacks("Linf") == [
        AttackSpec.PGD40,
        AttackSpec.AUTOATTACK,
        AttackSpec.FWA40,
        AttackSpec.TI_DIM,
    ]
    assert paper_transfer_attacks("L2") == [AttackSpec.PGD40, AttackSpec.CW_L2, AttackSpec.DDN]
    # The surrogate's cache key ignores the attacks crafted on it.
    surrogate = stages[StageName.SURROGATE]
    other_attacks = with_overrides(enabled, ['transfer.attacks=["pgd40"]'])
    assert surrogate.cache_config(enabled) == surrogate.cache_config(other_attacks)
    assert surrogate.cache_config(enabled) != surrogate.cache_config(
        with_overrides(enabled, ["transfer.architecture=small_cnn"])
    )
    with pytest.raises(ConfigError, match="transfer.attacks"):
        validate(with_overrides(config, ['transfer.attacks=["ddn"]']))  # an L2 attack, L-inf run


def test_method_option_selects_wmim():
    config = with_overrides(load_config("quickstart"), ["train.method=wmim"])
    assert config.train.method.value == "wmim"
    with pytest.raises(ConfigError, match="train.method"):
        with_overrides(load_config("quickstart"), ["train.method=mim"])
