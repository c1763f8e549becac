"""The evaluation command line: the pipeline's test split given its data settings, one-line errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mi_keras.evaluation.__main__ import build_parser, main
from mi_keras.evaluation.cli_data import load_data
from pipeline.components.stage_data import DESCRIPTION_FILE, StageData, loader_arguments
from pipeline.orchestration.artifact import Artifact, ArtifactType
from pipeline.settings import DataConfig


def pipeline_test_split(tmp_path, data: DataConfig):
    """The test arrays every pipeline stage reads for these data settings."""
    (tmp_path / DESCRIPTION_FILE).write_text(json.dumps({"loader": loader_arguments(data, None), "info": {}}))
    return StageData(Artifact(name="dataset", type=ArtifactType.DATASET, uri=str(tmp_path))).arrays("test")


@pytest.mark.parametrize(
    "flags, data",
    [
        (["--n-examples", "all"], DataConfig()),
        (
            ["--test-size", "0.3", "--validation-size", "0.2", "--split-seed", "5", "--n-examples", "50"],
            DataConfig(test_size=0.3, validation_size=0.2, split_seed=5, test_take=50),
        ),
    ],
)
def test_the_cli_evaluates_exactly_the_pipelines_test_split(tmp_path, flags, data):
    args = build_parser().parse_args(["--model", "m.keras", "--dataset", "digits", "--eps", "0.1", *flags])
    selected = load_data(args)
    x, y = pipeline_test_split(tmp_path, data)
    np.testing.assert_array_equal(selected.x, x)
    np.testing.assert_array_equal(selected.y, y)
    assert f"split_seed={data.split_seed}" in selected.description


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--model", "{tmp}/missing.keras"], "--model {tmp}/missing.keras: no such file or folder"),
        (["--model", "{tmp}"], "--model {tmp}: a folder without saved_model.pb is not a SavedModel."),
        (["--model", "{tmp}/data.npz"], "not a .keras file or a SavedModel folder"),
        (["--model", "{tmp}/m.keras", "--n-examples", "0"], "expected a positive integer or 'all'; got '0'"),
        (["--model", "{tmp}/m.keras", "--npz", "{tmp}/none.npz"], "--npz {tmp}/none.npz: no such file."),
    ],
)
def test_bad_arguments_end_in_a_one_line_usage_error(tmp_path, capsys, arguments, message):
    (tmp_path / "m.keras").write_bytes(b"")
    np.savez(tmp_path / "data.npz", x=np.zeros((2, 8, 8, 1)), y=np.zeros(2, int))
    arguments = [item.format(tmp=tmp_path) for item in arguments]
    if "--npz" not in arguments:
        arguments += ["--npz", str(tmp_path / "data.npz")]
    with pytest.raises(SystemExit) as exit_info:
        main([*arguments, "--eps", "0.1"])
    error = capsys.readouterr().err
    assert exit_info.value.code == 2
    assert message.format(tmp=tmp_path) in error and "Traceback" not in error
    assert error.strip().splitlines()[-1].startswith("python -m mi_keras.evaluation: error: ")


def test_the_ingest_record_and_the_report_hash_a_split_alike(tmp_path):
    from mi_keras.evaluation import DataSlice
    from pipeline.orchestration.runner import PipelineRunner
    from pipeline.orchestration.stage import StageName
    from pipeline.settings import PipelineConfig
    from pipeline.stages.ingest import Ingest

    result = PipelineRunner([Ingest()], PipelineConfig(name="digits"), tmp_path / "root", log=lambda line: None).run()
    artifact = result.outputs[StageName.INGEST]["dataset"]
    recorded = json.loads((artifact.path / DESCRIPTION_FILE).read_text())
    assert recorded["num_examples"]["train"] > 1024, "the ingest hashes batches of 1,024: take more"
    for split in ("train", "test"):
        assert DataSlice(*StageData(artifact).arrays(split), "").sha256() == recorded["sha256"][split], split


def test_evaluation_split_merges_a_last_batch_of_one(tmp_path):
    """The pipeline's validation batches follow `batch_bounds`, as the MI probe's do."""
    from mi_keras.mi.bounds import batch_bounds

    description = {"loader": loader_arguments(DataConfig(), None), "info": {}}
    (tmp_path / DESCRIPTION_FILE).write_text(json.dumps(description))
    artifact = Artifact(name="dataset", type=ArtifactType.DATASET, uri=str(tmp_path))
    x, y = StageData(artifact).arrays("validation")
    description["num_examples"] = {"validation": len(y)}
    (tmp_path / DESCRIPTION_FILE).write_text(json.dumps(description))
    batch_size = next(b for b in range(2, len(y)) if len(y) % b == 1 and len(y) // b >= 2)
    batches = list(StageData(artifact).evaluation_split("validation", batch_size))
    assert [len(labels) for _, labels in batches] == [end - begin for begin, end in batch_bounds(len(y), batch_size)]
    assert min(len(labels) for _, labels in batches) >= 2
    np.testing.assert_array_equal(np.concatenate([labels for _, labels in batches]), y)
    np.testing.assert_array_equal(np.concatenate([images for images, _ in batches]), x)


def test_the_report_goes_to_reports_by_default_and_never_into_the_version_folder(tmp_path, monkeypatch, capsys):
    import keras

    from mi_keras.export import export_classifier

    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 1))
    classifier = keras.Model(inputs, keras.layers.Dense(10)(keras.layers.Flatten()(inputs)))
    version = export_classifier(classifier, tmp_path / "saved_models" / "tiny" / "1")
    before = sorted(str(path.relative_to(version)) for path in version.rglob("*"))
    np.savez(tmp_path / "data.npz", x=np.random.default_rng(0).random((8, 8, 8, 1)), y=np.arange(8) % 10)
    monkeypatch.chdir(tmp_path)
    arguments = ["--model", "saved_models/tiny/1", "--npz", "data.npz", "--eps", "0.1", "--attacks", "fgsm"]
    assert (
        main([*arguments, "--batch-size", "8", "--masking-examples", "4", "--square-queries", "0", "--no-progress"])
        == 0
    )
    assert sorted(str(path.relative_to(version)) for path in version.rglob("*")) == before
    assert (tmp_path / "reports" / "tiny-1" / "report.json").is_file()
    assert sorted(path.name for path in (tmp_path / "saved_models" / "tiny").iterdir()) == ["1"]
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "default: reports/<model>" in " ".join(capsys.readouterr().out.split())
