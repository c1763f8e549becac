"""The mi-keras pipeline: data -> standard AT -> MI estimators -> MIAT -> evaluation -> export.

With no argument it runs the quick-start (``pipeline/configs/quickstart.py``: the bundled
8x8 digits, a small CNN, L-inf) and ends with a table comparing standard AT and MIAT and
the path of the exported SavedModel. Every stage's outputs go under ``--pipeline-root``; a
second run reuses them (nothing is retrained) unless the code, the config or an input changed.

Examples:
```
python pipeline/run.py                                    # the quick-start
python pipeline/run.py --config mnist --data-dir DIR
python pipeline/run.py --set train.epochs=5 --set attack.eps=0.2
python pipeline/run.py --force train                      # retrain MIAT, re-evaluate, re-export
python pipeline/run.py --stages tune --set train.use_tuned=true
python pipeline/run.py --set deterministic=true              # op determinism: docs/reproducibility.md
TF_CONFIG=... python pipeline/run.py --strategy multiworker   # on every worker: docs/distributed.md
tensorboard --logdir pipeline_root/tensorboard --host 127.0.0.1
```
"""

from __future__ import annotations

import argparse
import os
import pathlib
import shlex
import sys
import time

# `python pipeline/run.py` puts pipeline/ on sys.path, not the repository that holds it.
_REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
if str(_REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(_REPO_ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import tensorflow as tf  # noqa: E402

from mi_keras.data import DataError  # noqa: E402
from pipeline.components.builders import StrategyName, make_strategy, worker_pipeline_root  # noqa: E402
from pipeline.components.callbacks import TrainingDivergedError  # noqa: E402
from pipeline.components.comparison_table import ComparisonTable  # noqa: E402
from pipeline.orchestration.runner import PipelineBusyError, PipelineRunner, RunResult  # noqa: E402
from pipeline.orchestration.stage import StageName  # noqa: E402
from pipeline.recipes import Recipe, recipe_overrides  # noqa: E402
from pipeline.settings import (  # noqa: E402
    ConfigError,
    PipelineConfig,
    config_keys,
    load_config,
    validate,
    with_overrides,
)
from pipeline.stages import all_stages  # noqa: E402
from pipeline.stages.tune import is_tuner_worker, run_tuner_worker  # noqa: E402

DEFAULT_CONFIG = "quickstart"
DEFAULT_ROOT = "pipeline_root"
TUNER_WORKER_WAIT_SECONDS = 3600.0  # for the chief's upstream stages, then the worker gives up


def build_parser() -> argparse.ArgumentParser:
    stage_names = ", ".join(name.value for name in StageName)
    parser = argparse.ArgumentParser(
        prog="python pipeline/run.py",
        description="MIAT pipeline: ingest -> pretrain (standard AT) -> estimators -> [tune] -> train (MIAT) -> evaluate -> export.",
    )
    parser.add_argument(
        "--config",
        default=DEFAULT_CONFIG,
        help=f"a config name in pipeline/configs/ or a path to a .py file (default: {DEFAULT_CONFIG})",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a setting, e.g. --set train.epochs=5 (repeatable; --list-keys shows the keys)",
    )
    parser.add_argument(
        "--recipe",
        default=None,
        choices=[recipe.value for recipe in Recipe],
        help="train MIAT by a named recipe, applied before --set (pipeline/recipes.py: official code or paper)",
    )
    parser.add_argument(
        "--stages",
        nargs="+",
        metavar="STAGE",
        help=f"run these stages (and, cached or not, what they read from); names: {stage_names}",
    )
    parser.add_argument(
        "--force",
        action="append",
        default=[],
        metavar="STAGE",
        help="re-execute STAGE and every stage downstream of it, ignoring the cache (repeatable)",
    )
    parser.add_argument(
        "--pipeline-root",
        default=DEFAULT_ROOT,
        help=f"artifacts, metadata and TensorBoard logs (default: ./{DEFAULT_ROOT})",
    )
    parser.add_argument(
        "--data-dir", default=None, help="tensorflow_datasets data folder; relative dataset paths start here"
    )
    parser.add_argument(
        "--strategy",
        default=StrategyName.DEFAULT.value,
        choices=[name.value for name in StrategyName],
        help="tf.distribute strategy",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument(
        "--list-keys", action="store_true", help="print every --set key with its current value and exit"
    )
    return parser


def parse_stage_names(values: list[str] | None, flag: str) -> list[StageName] | None:
    """Stage names from ``--stages a b`` or ``--stages a,b``; a ConfigError names a bad one."""
    if not values:
        return None
    names = [item.strip() for value in values for item in value.split(",") if item.strip()]
    try:
        return [StageName.parse(name, flag) for name in names]
    except ValueError as error:
        raise ConfigError(str(error)) from None


def configured(args: argparse.Namespace) -> PipelineConfig:
    """``--config``, then ``--recipe``'s overrides, then ``--set``'s (not validated yet)."""
    config = load_config(args.config)
    if args.recipe is not None:
        config = with_overrides(config, recipe_overrides(args.recipe, config))
    return with_overrides(config, args.set)


def prepare(args: argparse.Namespace) -> tuple[PipelineConfig, list[StageName] | None, list[StageName]]:
    """Loads, overrides and validates everything before any work starts."""
    if args.data_dir is not None:  # recorded by ingest: absolute, so any later cwd reads the same data
        args.data_dir = os.path.abspath(os.path.expanduser(args.data_dir))
    config = configured(args)
    validate(config, args.data_dir)
    requested = parse_stage_names(args.stages, "--stages")
    forced = parse_stage_names(args.force, "--force") or []
    return config, requested, forced


def configure_threads() -> None:
    """All cores for one op, one op at a time: the fastest setting measured on 2 cores."""
    tf.config.threading.set_intra_op_parallelism_threads(os.cpu_count() or 1)
    tf.config.threading.set_inter_op_parallelism_threads(1)


def summary_lines(result: RunResult) -> list[str]:
    """The comparison table, the exported model and where to look next."""
    lines = ["", "Stages: " + ", ".join(f"{name.value} ({state.value})" for name, state in result.states.items())]
    evaluation = result.outputs.get(StageName.EVALUATE, {}).get("evaluation")
    if evaluation is not None:
        lines += ["", ComparisonTable.load(evaluation.uri).to_markdown()]
    export = result.outputs.get(StageName.EXPORT)
    if export is not None:
        pushed = export.get("pushed_model")
        if pushed is not None:
            lines += ["", f"Exported model: {pushed.uri}"]
        else:
            lines += ["", "Not exported: " + "; ".join(export["push_record"].properties["reasons"])]
    lines += [
        f"Pipeline root: {result.root}",
        f"TensorBoard: tensorboard --logdir {result.root / 'tensorboard'} --host 127.0.0.1",
    ]
    return lines


def wait_for_tune_inputs(runner: PipelineRunner, timeout_seconds: float = TUNER_WORKER_WAIT_SECONDS):
    """A KerasTuner worker may start with the chief: it waits for the chief's upstream stages."""
    deadline = time.monotonic() + timeout_seconds
    while True:
        try:
            return runner.cached_inputs(StageName.TUNE)
        except ConfigError:
            if time.monotonic() > deadline:
                raise
            time.sleep(2)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # First: a multi-worker strategy configures collectives, which TensorFlow allows only
    # before its first op.
    strategy = None if args.list_keys else make_strategy(args.strategy)
    try:
        if args.list_keys:
            config = configured(args).to_dict()
            for key in config_keys():
                section, _, field = key.rpartition(".")
                print(f"{key} = {(config[section] if section else config)[field]!r}")
            return 0
        config, requested, forced = prepare(args)
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if config.deterministic:  # process-wide and irreversible, so set by the entry point only
        tf.config.experimental.enable_op_determinism()
    started = time.perf_counter()
    root = worker_pipeline_root(args.pipeline_root, strategy)
    if root != pathlib.Path(args.pipeline_root):  # a non-chief worker keeps its pushes apart too
        config = with_overrides(config, [f"export.base_dir={root / 'saved_models'}"])
    runner = PipelineRunner(all_stages(), config, root, args.data_dir, strategy, verbose=0 if args.quiet else 1)
    if is_tuner_worker():
        try:
            inputs, work_dir = wait_for_tune_inputs(runner)
        except ConfigError as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
        tuner_id = os.environ["KERASTUNER_TUNER_ID"]
        view = runner.stages[StageName.TUNE].config_view(config)  # what the chief's tune stage reads
        run_tuner_worker(view, inputs, work_dir, runner.root / "tensorboard" / f"tune-{tuner_id}", runner.verbose)
        print(f"[tune] KerasTuner worker {tuner_id}: the search is over")
        return 0
    command = shlex.join(["python", "pipeline/run.py", *(argv if argv is not None else sys.argv[1:])])
    try:
        result = runner.run(requested, forced, command=command)
    except (ConfigError, DataError, TrainingDivergedError, PipelineBusyError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print("\n".join(summary_lines(result)))
    print(f"Wall time: {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    # Threads are fixed before TensorFlow starts; a process that calls `main` itself keeps its own.
    configure_threads()
    sys.exit(main())
