"""Pipeline settings: typed --set overrides, and every invalid setting fails fast, by name."""

from __future__ import annotations

import re
import time

import pytest

from mi_keras.enums import ThreatModel
from mi_keras.evaluation import AttackSpec
from pipeline import run
from pipeline.settings import (
    ConfigError,
    DataConfig,
    PipelineConfig,
    available_configs,
    config_keys,
    load_config,
    validate,
    with_overrides,
)


def test_every_shipped_config_loads_validates_and_documents_its_command():
    names = available_configs()
    assert {"quickstart", "mnist", "fashion_mnist", "cifar10_paper", "cifar10_code"} <= set(names)
    for name in names:
        config = load_config(name)
        module = __import__(f"pipeline.configs.{name}", fromlist=["CONFIG"])
        assert "python pipeline/run.py" in module.__doc__, name
        assert "Expected" in module.__doc__, name
        validate(with_overrides(config, ["data.dataset=digits"]))


def test_paper_and_code_configs_hold_the_published_settings():
    paper, code = load_config("cifar10_paper"), load_config("cifar10_code")
    assert paper.attack.eps == pytest.approx(8 / 255) and paper.attack.resolved_step_size == pytest.approx(2 / 255)
    assert (paper.train.batch_size, paper.train.epochs, paper.train.lr_milestones) == (1024, 100, (75, 90))
    assert (paper.train.alpha, paper.train.lam, paper.train.learning_rate) == (5.0, 0.1, 0.1)
    assert paper.model.architecture.value == "resnet18"
    assert code.model.architecture.value == "wrn34_10"
    assert (
        code.attack.steps,
        code.attack.step_size,
        code.train.batch_size,
        code.train.lam,
        code.train.warmup_epochs,
    ) == (40, 0.007, 256, 0.0, 2)
    assert load_config("mnist").attack.eps == 0.3 and load_config("fashion_mnist").attack.eps == 0.1


def test_overrides_are_typed():
    config = with_overrides(
        load_config("quickstart"),
        [
            "attack.eps=8/255",
            "train.epochs=3",
            "train.lr_milestones=1,2",
            "evaluate.attacks=pgd20,fgsm",
            "attack.threat_model=l2",
            'model.options={"padding": "same"}',
            "data.take=none",
            "tune.enabled=yes",
        ],
    )
    assert config.attack.eps == pytest.approx(8 / 255)
    assert config.train.epochs == 3 and config.train.lr_milestones == (1, 2)
    assert config.evaluate.attacks == (AttackSpec.PGD20, AttackSpec.FGSM)
    assert config.attack.threat_model is ThreatModel.L2
    assert config.model.options == {"padding": "same"} and config.data.take is None and config.tune.enabled is True
    assert "train.lam" in config_keys() and "seed" in config_keys()


@pytest.mark.parametrize(
    "assignment, message",
    [
        ("train.epoch=3", "Unknown config key 'train.epoch'. Did you mean train.epochs"),
        ("train.epochs=three", "'train.epochs' expects an integer; got 'three'"),
        ("attack.eps=big", "'attack.eps' expects a number"),
        ("tune.enabled=maybe", "'tune.enabled' expects true or false"),
        ("model.architecture=resnet99", "Unknown model.architecture 'resnet99'"),
        ("train.epochs", "--set expects key=value"),
    ],
)
def test_bad_overrides_name_the_key(assignment, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        with_overrides(load_config("quickstart"), [assignment])


@pytest.mark.parametrize(
    "assignments, message",
    [
        (["attack.eps=-0.1"], "attack.eps must be > 0"),
        (["attack.eps=0.1", "attack.step_size=0.2"], "attack.step_size must be in (0, attack.eps]"),
        (["train.batch_size=1"], "train.batch_size must be >= 2 (the DV bound"),
        (["estimators.batch_size=1"], "estimators.batch_size must be >= 2"),
        (["data.dataset=no_such_dataset_anywhere"], "unknown dataset 'no_such_dataset_anywhere'"),
        (["data.dataset=idx:/no/such/folder"], "/no/such/folder does not exist"),
        (["data.download=true"], "data.download applies to tensorflow_datasets names only"),
        (["train.lr_milestones=5,3"], "train.lr_milestones must be increasing"),
        (["evaluate.attacks=pgd20", "evaluate.bless_attack=pgd40"], "evaluate.bless_attack 'pgd40' must be one of"),
        (
            ["attack.threat_model=L2", "evaluate.attacks=cw_inf", "evaluate.bless_attack=cw_inf"],
            "'cw_inf' is not defined for threat model 'L2'",
        ),
    ],
)
def test_invalid_settings_are_rejected_by_name(assignments, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        validate(with_overrides(load_config("quickstart"), assignments))


def test_all_problems_are_reported_at_once():
    with pytest.raises(ConfigError) as error:
        validate(
            with_overrides(load_config("quickstart"), ["attack.eps=-1", "pretrain.batch_size=0", "train.epochs=0"])
        )
    for key in ("attack.eps", "pretrain.batch_size", "train.epochs"):
        assert key in str(error.value)


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--set", "attack.eps=-0.3"], "attack.eps must be > 0"),
        (["--set", "attack.step_size=0.5"], "attack.step_size must be in (0, attack.eps]"),
        (["--set", "model.architecture=alexnet"], "Unknown model.architecture 'alexnet'"),
        (["--set", "data.dataset=not_a_dataset_name"], "unknown dataset 'not_a_dataset_name'"),
        (["--set", "train.batch_size=1"], "train.batch_size must be >= 2"),
        (["--set", "train.epochz=1"], "Unknown config key 'train.epochz'"),
        (["--config", "nope"], "unknown config 'nope'"),
        (["--stages", "training"], "Unknown --stages 'training'"),
        (["--force", "everything"], "Unknown --force 'everything'"),
    ],
)
def test_the_command_line_fails_before_any_work(tmp_path, capsys, arguments, message):
    root = tmp_path / "root"
    started = time.perf_counter()
    code = run.main([*arguments, "--pipeline-root", str(root)])
    elapsed = time.perf_counter() - started
    assert code == 2
    assert message in capsys.readouterr().err
    assert not root.exists(), "nothing may be written before the settings are valid"
    assert elapsed < 10, f"validation took {elapsed:.1f} s"


def test_config_sections_are_checked_by_type():
    with pytest.raises(ConfigError, match=re.escape("'data.take' expects an integer")):
        PipelineConfig(name="x", data=DataConfig(take="many"))


def test_list_keys_prints_every_key_with_its_value(capsys):
    assert run.main(["--list-keys", "--set", "train.epochs=7"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "train.epochs = 7" in lines and "attack.threat_model = 'Linf'" in lines
    assert len(lines) == len(config_keys())


def test_data_num_classes_and_image_size_are_checked_up_front_and_reach_the_loader(tmp_path):
    import json

    import numpy as np

    from mi_keras.data import DataError
    from pipeline.orchestration.runner import PipelineRunner
    from pipeline.stages.ingest import Ingest

    for assignment, message in (
        ("data.num_classes=1", "data.num_classes must be >= 2 or none; got 1."),
        ("data.image_size=32", "data.image_size must be height,width with both >= 1, or none; got [32]."),
        ("data.image_size=0,4", "data.image_size must be height,width with both >= 1, or none; got [0, 4]."),
    ):
        with pytest.raises(ConfigError, match=re.escape(message)):
            validate(with_overrides(load_config("quickstart"), [assignment]))

    def ingest(*assignments: str) -> dict:
        config = with_overrides(load_config("quickstart"), list(assignments))
        validate(config)
        result = PipelineRunner([Ingest()], config, tmp_path / "root", log=lambda line: None).run()
        return json.loads((result.outputs[list(result.outputs)[0]]["dataset"].path / "dataset.json").read_text())

    assert ingest("data.image_size=4,6")["info"]["image_shape"] == [4, 6, 1]
    labels = np.tile(np.arange(10), 10)
    labels[37] = 10  # a stray label: without a class count it would make an 11th class
    np.savez(tmp_path / "pool.npz", x=np.random.default_rng(0).random((100, 8, 8, 1), np.float32), y=labels)
    with pytest.raises(DataError, match=r"label 10 at index \d+ is outside \[0, 10\)"):
        ingest(f"data.dataset=npz:{tmp_path / 'pool.npz'}", "data.num_classes=10")


@pytest.mark.parametrize(
    "method, base_loss, label",
    [("miat", "ce", "MIAT"), ("miat", "trades", "NAMID_T"), ("miat", "mart", "NAMID_M"), ("wmim", "trades", "WMIM")],
)
def test_the_trained_row_is_named_by_the_method_and_its_base_loss(method, base_loss, label):
    from pipeline.components.comparison_table import trained_label
    from pipeline.configs.quickstart import CONFIG
    from pipeline.settings import with_overrides

    config = with_overrides(CONFIG, [f"train.method={method}", f"train.base_loss={base_loss}"])
    assert trained_label(config.train) == label
