"""Transfer: black-box robustness against a separately trained surrogate (off by default)."""

from __future__ import annotations

import json

from mi_keras.evaluation.attack_spec import paper_transfer_attacks
from mi_keras.evaluation.transfer import transfer_table, transfer_table_markdown
from pipeline.components.artifacts import ClassifierFiles
from pipeline.components.comparison_table import BASELINE_LABEL, TRAINED_LABEL_SECTIONS, trained_label
from pipeline.components.stage_data import StageData
from pipeline.orchestration.artifact import Artifact, ArtifactType
from pipeline.orchestration.stage import Inputs, Stage, StageContext, StageName, register_stage
from pipeline.settings import PipelineConfig

TABLE_FILE = "transfer.json"


@register_stage("transfer", order=80)
class Transfer(Stage):
    """The paper's black-box tables (Tables 2, 5 and 6): transfer from a surrogate.

    Crafts each of ``transfer.attacks`` (the paper's list for the threat model when empty)
    once on the `Surrogate` stage's model, at ``attack.eps``, and scores the standard-AT and
    the trained (MIAT, or WMIM) classifiers (best epochs) on the same adversarial examples
    of the test split. Off by default: ``transfer.enabled=true`` or ``--stages transfer``.
    Output ``transfer``: ``transfer.json`` (see
    `mi_keras.evaluation.transfer.transfer_table`) and ``transfer.md``, the table.
    """

    def upstream(self, config: PipelineConfig) -> tuple[StageName, ...]:
        return (StageName.INGEST, StageName.SURROGATE, StageName.PRETRAIN, StageName.TRAIN)

    def enabled_by_default(self, config: PipelineConfig) -> bool:
        return config.transfer.enabled

    def config_sections(self, config: PipelineConfig) -> tuple[str, ...]:
        return ("seed", "attack", "transfer", *TRAINED_LABEL_SECTIONS)

    def run(self, context: StageContext, inputs: Inputs) -> list[Artifact]:
        config, settings = context.config, context.config.transfer
        data = StageData(inputs[StageName.INGEST]["dataset"])
        targets = {
            BASELINE_LABEL: ClassifierFiles.of(inputs[StageName.PRETRAIN]["model"]).best,
            trained_label(config.train): ClassifierFiles.of(inputs[StageName.TRAIN]["model"]).best,
        }
        specs = settings.attacks or paper_transfer_attacks(config.attack.threat_model)
        attacks = [
            spec.build(config.attack.eps, config.attack.threat_model, seed=config.seed, batch_size=settings.batch_size)
            for spec in specs
        ]
        table = transfer_table(
            ClassifierFiles.of(inputs[StageName.SURROGATE]["model"]).best,
            {label: str(path) for label, path in targets.items()},
            data.arrays("test"),
            attacks,
            batch_size=settings.batch_size,
            seed=config.seed,
            progress=context.verbose > 0,
            description=f"{data.info['name']} test split",
        )
        output = context.output_dir / "transfer"
        output.mkdir()
        (output / TABLE_FILE).write_text(json.dumps(table, indent=2))
        markdown = transfer_table_markdown(table)
        (output / "transfer.md").write_text(markdown)
        print(markdown)
        metrics = {
            f"{label}/{column}": value for label, cells in table["rows"].items() for column, value in cells.items()
        }
        context.log_metrics(metrics)
        return [context.artifact("transfer", ArtifactType.EVALUATION, "transfer", **metrics)]
