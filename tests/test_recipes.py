"""The named MIAT recipes (official code, paper) and the study methods built on them."""

from __future__ import annotations

import pytest

from pipeline.recipes import Recipe, recipe_overrides
from pipeline.run import build_parser, configured
from pipeline.settings import ConfigError, load_config, validate, with_overrides
from pipeline.study_driver.study import Method, load_study
from pipeline.study_driver.unit import method_recipe, unit_config


def test_the_official_recipe_is_the_released_code_at_the_configs_eps():
    config = with_overrides(
        load_config("cifar10_paper"), recipe_overrides(Recipe.OFFICIAL, load_config("cifar10_paper"))
    )
    validate(config)
    train, estimators = config.train, config.estimators
    assert (train.attack_steps, train.attack_step_size) == (40, pytest.approx(0.007))  # at eps 8/255
    assert (train.selection.value, train.lam, train.batch_size, train.warmup_epochs) == ("batch_softmax", 0.0, 256, 2)
    assert (estimators.units, estimators.epochs, estimators.learning_rate, estimators.objective.value) == (
        2048,
        25,
        0.01,
        "contrastive",
    )
    assert config.pretrain == load_config("cifar10_paper").pretrain  # the baseline is untouched


def test_the_paper_recipe_is_its_text_and_the_cli_applies_recipes_before_set():
    args = build_parser().parse_args(["--config", "fashion_mnist", "--recipe", "paper", "--set", "train.lam=0.2"])
    config = configured(args)
    assert (config.train.attack_steps, config.train.attack_step_size) == (10, pytest.approx(0.1 / 4))
    assert (config.train.selection.value, config.train.batch_size, config.train.lam) == ("logits", 1024, 0.2)


def test_the_official_recipe_refuses_a_threat_model_the_code_never_trained():
    with pytest.raises(ConfigError, match="L-inf"):
        recipe_overrides("official", load_config("cifar10_paper_l2"))
    with pytest.raises(ValueError, match="'official', 'paper'"):
        Recipe.parse("released")


def test_stability_methods_differ_from_lambda0_miat_by_their_stabiliser_alone():
    study = load_study("stability")
    dataset = study.datasets[0]
    base = unit_config(dataset, 0, [])
    reference = unit_config(dataset, 0, Method.MIAT_LAMBDA0.overrides(())).to_dict()
    expected = {
        Method.MIAT_MIN_SELECTED: {"train.min_selected": 2},
        Method.MIAT_SHARE_WEIGHTED: {"train.weight_by_selected_share": True},
        Method.MIAT_COSINE_EPSILON: {"train.cosine_epsilon": 1.0},
        Method.MIAT_STANDARDIZED_LOGITS: {"estimators.logit_normalization": "standardize"},
        Method.MIAT_FROM_AT: {"train.init_from_pretrain": True},
        Method.MIAT_REFIT: {"train.refit_estimators_every": 3},
    }
    for method, difference in expected.items():
        assert method_recipe(method, base) == {"name": "study", "overrides": []}
        config = unit_config(dataset, 0, method.overrides(())).to_dict()
        changed = {
            f"{section}.{key}": value
            for section in ("train", "estimators", "attack", "pretrain")
            for key, value in config[section].items()
            if reference[section][key] != value
        }
        assert changed == difference, method
    assert method_recipe(Method.MIAT_OFFICIAL, base)["name"] == "official"
    assert (
        study.results_study(Method.STANDARD_AT) == "cpu_study" and study.results_study(Method.MIAT_REFIT) == "stability"
    )
