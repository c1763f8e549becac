"""Stage contracts: a stage reads only the config sections its cache key covers.

The runner hands every stage `Stage.config_view`; `test_pipeline_end_to_end` runs all nine
real stages through it (one undeclared read there fails the run). Here: the view itself,
the runner's use of it, and the declarations that hold the cache keys of the real stages.
"""

from __future__ import annotations

import dataclasses

import pytest

from pipeline.orchestration.artifact import ArtifactType
from pipeline.orchestration.config_view import ConfigView, UndeclaredConfigError
from pipeline.orchestration.metadata_store import ExecutionState, MetadataStore
from pipeline.orchestration.runner import METADATA_FILE, PipelineRunner
from pipeline.orchestration.stage import Stage, StageName
from pipeline.settings import PipelineConfig, load_config, with_overrides
from pipeline.stages import all_stages


def test_the_view_refuses_undeclared_sections_and_fields_naming_the_stage():
    config = load_config("quickstart")
    view = ConfigView(config, "transfer", ("seed", "attack", "train.method"))
    assert view.attack.eps == config.attack.eps and view.train.method == config.train.method
    assert view.deterministic is config.deterministic  # readable with the seed
    with pytest.raises(UndeclaredConfigError, match=r"'transfer' reads config\.export"):
        _ = view.export
    with pytest.raises(UndeclaredConfigError, match=r"'transfer' reads config\.train\.epochs"):
        _ = view.train.epochs
    with pytest.raises(AttributeError):
        _ = view.no_such_key
    with pytest.raises(ValueError, match="train.no_such_field"):
        ConfigView(config, "train", ("train.no_such_field",))


def test_to_dict_is_exactly_the_declared_values_and_replace_opens_the_changed_keys():
    config = with_overrides(load_config("quickstart"), ["deterministic=true"])
    view = ConfigView(config, "surrogate", ("seed", "transfer.architecture"))
    assert view.to_dict() == {"seed": 0, "deterministic": True, "transfer": {"architecture": "vgg19"}}
    assert ConfigView(load_config("quickstart"), "s", ("seed",)).to_dict() == {"seed": 0}  # old keys kept
    changed = view.replace(seed=5, model=dataclasses.replace(config.model, options={"padding": "same"}))
    assert changed.seed == 5 and changed.model.options == {"padding": "same"}
    with pytest.raises(UndeclaredConfigError):
        _ = changed.train


class _ReadsUndeclared(Stage):
    name = StageName.INGEST

    def config_sections(self, config):
        return ("data",)

    def run(self, context, inputs):
        (context.output_dir / "seed.txt").write_text(str(context.config.seed))  # not declared
        return [context.artifact("dataset", ArtifactType.DATASET, "seed.txt")]


def test_the_runner_hands_each_stage_its_view_and_an_undeclared_read_fails_the_execution(tmp_path):
    with pytest.raises(UndeclaredConfigError, match=r"'ingest' reads config\.seed"):
        PipelineRunner([_ReadsUndeclared()], PipelineConfig(name="toy"), tmp_path, log=lambda line: None).run()
    store = MetadataStore(tmp_path / METADATA_FILE, tmp_path)
    assert [record.state for record in store.executions()] == [ExecutionState.FAILED]


@pytest.mark.parametrize("overrides", [[], ["train.use_tuned=true", "transfer.enabled=true"]])
def test_every_real_stage_declares_valid_keys_and_the_export_declares_what_its_metadata_records(overrides):
    config = with_overrides(load_config("quickstart"), overrides)
    for stage in all_stages():
        stage.config_view(config)  # unknown keys raise
    stages = {stage.name: stage for stage in all_stages()}
    export = stages[StageName.EXPORT].cache_config(config)
    # The metadata's config is the recipe of the exported model: every section upstream of it.
    assert {"name", "seed", "data", "model", "attack", "pretrain", "estimators", "train", "evaluate", "export"} <= set(
        export
    )
    assert ("tune" in export) == config.train.use_tuned and "transfer" not in export
    for name in (StageName.EVALUATE, StageName.TRANSFER):  # the trained row's name, nothing more of train
        assert stages[name].cache_config(config)["train"] == {
            "method": config.train.method.value,
            "base_loss": config.train.base_loss.value,
        }
