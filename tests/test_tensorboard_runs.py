"""TensorBoard reads at a glance: runs named by role, the evaluation as one table."""

from __future__ import annotations

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from pipeline.components.evaluation_summaries import write_accuracy_table
from pipeline.settings import load_config, with_overrides
from pipeline.stages.estimators import Estimators
from pipeline.stages.evaluate import Evaluate
from pipeline.stages.pretrain import Pretrain
from pipeline.stages.train import Train


@pytest.mark.parametrize(
    "overrides, runs",
    [
        ([], ["standard_at", "estimators", "miat", "evaluation"]),
        (["pretrain.base_loss=trades", "train.base_loss=trades"], ["trades", "estimators", "namid_t", "evaluation"]),
        (["train.method=wmim"], ["standard_at", "estimators", "wmim", "evaluation"]),
    ],
)
def test_training_stages_log_to_runs_named_by_their_role(overrides, runs):
    config = with_overrides(load_config("quickstart"), overrides)
    assert [stage.tensorboard_run(config) for stage in (Pretrain(), Estimators(), Train(), Evaluate())] == runs


def test_the_accuracy_table_is_one_text_entry_holding_every_row(tmp_path):
    markdown = "| model | clean | PGD-40 |\n|---|---|---|\n| Standard AT | 94.15 | 61.00 |\n| MIAT | 94.43 | 58.77 |"
    write_accuracy_table(tmp_path, markdown, "digits test split")
    events = EventAccumulator(str(tmp_path), size_guidance={"tensors": 0})
    events.Reload()
    assert events.Tags()["tensors"] == ["accuracy"] and not events.Tags()["scalars"]
    (event,) = events.Tensors("accuracy")
    assert event.tensor_proto.string_val[0].decode() == markdown
