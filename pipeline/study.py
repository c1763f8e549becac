"""The study driver: does MIAT beat standard adversarial training? Several seeds, paired units.

A study (``pipeline/studies/<name>.py``) lists datasets, methods and seeds. Each unit
(dataset, method, seed) trains through the pipeline (the standard-AT model and the
estimators of a dataset-seed are shared stages, trained once), is evaluated on test subsets
fixed once for the whole study, and writes one JSON under ``results/<study>/``. A unit whose
JSON exists is skipped; a killed unit resumes from its last finished epoch. ``--report``
renders ``docs/results.md`` and its plot from the JSONs alone.

Examples:
```
python pipeline/study.py --study cpu_study                  # run (or resume) every pending unit
python pipeline/study.py --study cpu_study --plan           # which units are done and pending
python pipeline/study.py --study cpu_study --only fashion_mnist/miat --max-units 1
python pipeline/study.py --study cpu_study --report         # docs/results.md from results/
```
"""

from __future__ import annotations

import argparse
import pathlib
import shlex
import sys
import time

_REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
if str(_REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(_REPO_ROOT))

from mi_keras.data import DataError  # noqa: E402
from pipeline.components.callbacks import TrainingDivergedError  # noqa: E402
from pipeline.run import configure_threads  # noqa: E402  (first: it sets TensorFlow's environment)
from pipeline.settings import ConfigError  # noqa: E402
from pipeline.study_driver.results_report import render_report  # noqa: E402
from pipeline.study_driver.study import load_study  # noqa: E402
from pipeline.study_driver.unit import UnitRunner, plan_units, unit_config  # noqa: E402


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python pipeline/study.py", description=__doc__.split("\n")[0])
    parser.add_argument("--study", required=True, help="a study name in pipeline/studies/ or a path to a .py file")
    parser.add_argument("--results-dir", default=str(_REPO_ROOT / "results"), help="unit JSONs (committed)")
    parser.add_argument(
        "--work-root",
        default=str(_REPO_ROOT / "study_root"),
        help="pipeline roots: models, checkpoints (not committed)",
    )
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="PREFIX",
        help="run units whose name starts with PREFIX, e.g. fashion_mnist/miat (repeatable)",
    )
    parser.add_argument("--max-units", type=int, default=None, help="stop after this many units")
    parser.add_argument("--plan", action="store_true", help="list the units and whether each is done; run nothing")
    parser.add_argument("--report", action="store_true", help="render the report from the JSONs; run nothing")
    parser.add_argument("--report-path", default=None, help="where --report writes (default: the study's `report`)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    command = shlex.join(["python", "pipeline/study.py", *(argv if argv is not None else sys.argv[1:])])
    results_dir = pathlib.Path(args.results_dir)
    try:
        study = load_study(args.study)
        if args.max_units is not None and args.max_units < 1:
            raise ConfigError(f"--max-units must be >= 1; got {args.max_units}.")
        units = [unit for unit in plan_units(study) if not args.only or any(str(unit).startswith(p) for p in args.only)]
        if args.only and not units:
            raise ConfigError(f"--only {args.only} matches no unit; --plan lists them.")
        if args.report:
            report_path = pathlib.Path(args.report_path or _REPO_ROOT / study.report)
            report_path.parent.mkdir(parents=True, exist_ok=True)
            report_path.write_text(render_report(study, results_dir, report_path.with_suffix(".png"), command))
            print(f"Wrote {report_path}")
            return 0
        for dataset in study.datasets:  # every setting is checked before the first unit trains
            unit_config(dataset, study.seeds[0], [])
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    pending = [unit for unit in units if not unit.result_path(results_dir, study).is_file()]
    if args.plan:
        for unit in units:
            print(f"{'done   ' if unit not in pending else 'pending'} {unit}")
        print(f"{len(units) - len(pending)} done, {len(pending)} pending")
        return 0
    runner = UnitRunner(study, results_dir, pathlib.Path(args.work_root), verbose=0 if args.quiet else 1)
    diverged = []
    for index, unit in enumerate(pending[: args.max_units]):
        started = time.perf_counter()
        print(f"[study] unit {index + 1}/{len(pending)}: {unit}", flush=True)
        try:
            runner.run(unit)
        except (ConfigError, DataError) as error:
            print(f"error: unit {unit}: {error}", file=sys.stderr)
            return 1
        except TrainingDivergedError as error:
            # Diverged before its first epoch ended (a later NaN is scored at its best epoch):
            # a property of the method, not of the setup, so the other units still run.
            print(f"error: unit {unit}: {error}", file=sys.stderr)
            diverged.append(str(unit))
            continue
        print(
            f"[study] {unit} done in {(time.perf_counter() - started) / 60:.1f} min -> {unit.result_path(results_dir, study)}",
            flush=True,
        )
    if diverged:
        names = ", ".join(diverged)
        print(
            f"error: {len(diverged)} unit(s) diverged before their first epoch ended and wrote no JSON: {names}",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    configure_threads()
    sys.exit(main())
