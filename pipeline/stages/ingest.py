"""Ingest: reads and checks every split once, records its statistics and content hash."""

from __future__ import annotations

import json

import sklearn

from mi_keras.data import DatasetSource, DatasetSpec, DatasetSplit, load_dataset
from mi_keras.data.split_hash import SplitHash
from pipeline.components.stage_data import DESCRIPTION_FILE, loader_arguments
from pipeline.orchestration.artifact import Artifact, ArtifactType, fingerprint_values
from pipeline.orchestration.stage import Inputs, Stage, StageContext, register_stage
from pipeline.settings import PipelineConfig


@register_stage("ingest", order=10)
class Ingest(Stage):
    """Like TFX's ExampleGen + StatisticsGen: the data every later stage reads, checked once.

    Loads train, validation (carved from train) and test through `mi_keras.data.load_dataset`,
    so bad data fails here, before any training. The ``dataset`` artifact's
    ``dataset.json`` holds the loader arguments, the `DatasetInfo`, per-split example and
    class counts, and a SHA-256 of each split's content: a change in the data changes the
    fingerprint and so re-runs everything downstream.
    """

    def config_sections(self, config: PipelineConfig) -> tuple[str, ...]:
        return ("data",)

    def external_fingerprint(self, config: PipelineConfig, data_dir: str | None) -> str:
        """Names, sizes and modification times of the source files (or the source's version)."""
        spec = DatasetSpec.parse(config.data.dataset)
        if spec.source is DatasetSource.DIGITS:
            return f"scikit-learn {sklearn.__version__}"
        if spec.source is DatasetSource.TFDS:
            return f"tfds {spec.location} in {data_dir}"
        files = sorted(
            file
            for root in spec.paths(data_dir)
            for file in ([root] if root.is_file() else root.rglob("*"))
            if file.is_file()
        )
        return fingerprint_values([(str(path), path.stat().st_size, path.stat().st_mtime_ns) for path in files])

    def run(self, context: StageContext, inputs: Inputs) -> list[Artifact]:
        arguments = loader_arguments(context.config.data, context.data_dir)
        takes = arguments.pop("take")
        summary = {"info": None, "num_examples": {}, "class_counts": {}, "sha256": {}}
        for split in DatasetSplit:
            dataset, info = load_dataset(
                split=split,
                batch_size=1024,
                shuffle=False,
                drop_remainder=False,
                take=takes.get(split.value),
                **arguments,
            )
            summary["sha256"][split.value], summary["num_examples"][split.value] = _content_hash(dataset)
            summary["class_counts"][split.value] = list(info.class_counts[split.value])
            if split is DatasetSplit.TRAIN:
                summary["info"] = info.to_dict()
        output = context.output_dir / "dataset"
        output.mkdir()
        (output / DESCRIPTION_FILE).write_text(
            json.dumps({"loader": {**arguments, "take": takes}, **summary}, indent=2)
        )
        counts = summary["num_examples"]
        context.log_metrics({f"num_examples_{split}": count for split, count in counts.items()})
        print(
            f"[ingest] {summary['info']['name']}: {counts['train']} train, {counts['validation']} validation, "
            f"{counts['test']} test examples of shape {tuple(summary['info']['image_shape'])}, "
            f"{summary['info']['num_classes']} classes"
        )
        return [context.artifact("dataset", ArtifactType.DATASET, "dataset", **counts)]


def _content_hash(dataset) -> tuple[str, int]:
    """The split's `SplitHash` (the reports' definition too) and its example count."""
    content = SplitHash()
    for images, labels in dataset:
        content.update(images.numpy(), labels.numpy())
    return content.hexdigest(), content.count
