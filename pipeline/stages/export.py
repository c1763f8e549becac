"""Export: pushes the blessed MIAT classifier as a TF Serving SavedModel version."""

from __future__ import annotations

import json
import pathlib
import shutil

import keras

import mi_keras
from mi_keras.export import export_classifier, next_version_dir, staging_dirs
from pipeline.components.artifacts import ClassifierFiles
from pipeline.components.comparison_table import ComparisonTable
from pipeline.components.stage_data import StageData
from pipeline.orchestration.artifact import Artifact, ArtifactType
from pipeline.orchestration.config_view import ConfigView
from pipeline.orchestration.metadata_store import process_alive
from pipeline.orchestration.stage import Inputs, Stage, StageContext, StageName, register_stage
from pipeline.settings import PipelineConfig

PUSH_FILE = "push.json"


@register_stage("export", order=90)
class Export(Stage):
    """Like TFX's Pusher: writes ``<export.base_dir>/<export.name>/<next integer version>/``.

    Runs only on a blessed model unless ``export.require_blessing=false``; otherwise it
    records that nothing was pushed and why. The SavedModel (`mi_keras.export.export_classifier`)
    has ``serving_default`` (float32 images in [0, 1] -> logits, probabilities, class_ids),
    ``serving_uint8`` (0..255 pixels) and ``serving_encoded`` (PNG/JPEG bytes), and its ``assets/metadata.json`` holds the
    class names, input shape, threat model, eps, the evaluation metrics and the config
    sections the stage declares (every one that shaped the model and its evaluation).
    Outputs: ``push_record`` (``push.json``: pushed or not, the version path, the reasons)
    and, with a push, ``pushed_model``: the version folder itself.
    """

    def upstream(self, config: PipelineConfig) -> tuple[StageName, ...]:
        return (StageName.INGEST, StageName.TRAIN, StageName.EVALUATE)

    def config_sections(self, config: PipelineConfig) -> tuple[str, ...]:
        # The metadata records the recipe of the exported model and of its evaluation: every
        # section that shaped them (not the black-box transfer, which touches neither), and
        # the name of the config they came from.
        tuned = ("tune",) if config.train.use_tuned else ()
        return (
            "name",
            "seed",
            "data",
            "model",
            "attack",
            "pretrain",
            "estimators",
            *tuned,
            "train",
            "evaluate",
            "export",
        )

    def remove_leftovers(self, config: PipelineConfig) -> list[str]:
        """Removes the unfinished exports under ``<base_dir>/<name>/`` whose process is gone."""
        lines = []
        for path, pid in staging_dirs(self._model_dir(config)):
            if not process_alive(pid):
                shutil.rmtree(path, ignore_errors=True)
                lines.append(f"[export] removed {path}: an unfinished export whose process {pid} is gone.")
        return lines

    @staticmethod
    def _model_dir(config: PipelineConfig) -> pathlib.Path:
        return pathlib.Path(config.export.base_dir).resolve() / config.export.name

    def run(self, context: StageContext, inputs: Inputs) -> list[Artifact]:
        config, settings = context.config, context.config.export
        blessing = inputs[StageName.EVALUATE]["blessing"]
        record = {
            "pushed": False,
            "path": None,
            "blessed": blessing.properties["blessed"],
            "reasons": blessing.properties["reasons"],
        }
        if settings.require_blessing and not record["blessed"]:
            print("[export] not pushed: the model was not blessed (" + "; ".join(record["reasons"]) + ").")
        else:
            version_dir = next_version_dir(self._model_dir(config))
            data = StageData(inputs[StageName.INGEST]["dataset"])
            with context.strategy.scope():
                classifier = keras.saving.load_model(ClassifierFiles.of(inputs[StageName.TRAIN]["model"]).best)
            export_classifier(
                classifier, version_dir, metadata=self._metadata(config, data, inputs), class_names=data.class_names
            )
            record.update(pushed=True, path=str(version_dir))
            print(f"[export] pushed {version_dir}")
        (context.output_dir / PUSH_FILE).write_text(json.dumps(record, indent=2))
        artifacts = [context.artifact("push_record", ArtifactType.PUSH_RECORD, PUSH_FILE, **record)]
        if record["pushed"]:
            # Outside the pipeline root: the cache re-exports when this folder is deleted.
            artifacts.append(
                Artifact(
                    name="pushed_model",
                    type=ArtifactType.PUSHED_MODEL,
                    uri=record["path"],
                    properties={"version": version_dir.name},
                )
            )
        return artifacts

    @staticmethod
    def _metadata(config: ConfigView, data: StageData, inputs: Inputs) -> dict:
        table = ComparisonTable.load(inputs[StageName.EVALUATE]["evaluation"].uri)
        return {
            "model_name": config.export.name,
            "dataset": data.info["name"],
            "threat_model": config.attack.threat_model.value,
            "eps": config.attack.eps,
            "input_range": [0.0, 1.0],
            "evaluation": table.to_dict(),
            "training": inputs[StageName.TRAIN]["model"].properties,
            "config": config.to_dict(),  # the declared sections: what the cache key covers
            "mi_keras_version": mi_keras.__version__,
        }
