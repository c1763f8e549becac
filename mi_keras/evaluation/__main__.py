"""Command line: ``python -m mi_keras.evaluation --model PATH --dataset SPEC --eps 0.3 ...``.

Examples:
```
python -m mi_keras.evaluation --model saved_models/quickstart/1 --dataset mnist --eps 0.3 \\
    --attacks pgd20,pgd40,autoattack --n-examples 1000 --batch-size 250 --out reports/quickstart
python -m mi_keras.evaluation --model model.keras --npz test.npz --eps 0.1 --eps 0.3
# exactly the quick-start pipeline's test split (its data settings are the defaults):
python -m mi_keras.evaluation --model saved_models/quickstart/1 --dataset digits --eps 0.2 --n-examples all
```
Writes report.json, report.md and the PNG plots under ``--out`` (by default
``reports/<model>``: ``reports/quickstart-1`` for ``saved_models/quickstart/1``,
``reports/model`` for ``model.keras``) and prints the Markdown report. It writes nothing
next to or inside the model unless ``--next-to-model`` asks for it. The exit status is 0, 2 for a usage error (one line), or 3
with ``--fail-on-masking`` when a gradient-masking check failed.
"""

from __future__ import annotations

import argparse
import os
import sys

from mi_keras.enums import ThreatModel
from mi_keras.evaluation.attack_spec import AttackSpec, default_attacks, parse_attack_list
from mi_keras.evaluation.cli_data import add_data_arguments, load_data
from mi_keras.evaluation.gradient_masking import GradientMaskingChecker
from mi_keras.evaluation.report_files import report_markdown
from mi_keras.evaluation.robustness_suite import evaluate_robustness

MASKING_FAILED_EXIT_CODE = 3


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m mi_keras.evaluation",
        description="Robustness evaluation of a Keras model or SavedModel (mi-keras).",
    )
    parser.add_argument("--model", required=True, help="a .keras file or a SavedModel folder")
    add_data_arguments(parser)
    parser.add_argument("--eps", type=float, action="append", required=True, help="radius; repeat for several")
    parser.add_argument("--threat-model", default="Linf", help="Linf or L2")
    parser.add_argument(
        "--attacks",
        help="comma-separated: "
        + ", ".join(spec.value for spec in AttackSpec)
        + " (default: the protocol's list for the threat model)",
    )
    parser.add_argument("--batch-size", type=int, default=250)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--restarts", type=int, default=1, help="random restarts of PGD-20/40 and CW-inf")
    parser.add_argument(
        "--out",
        help="directory for report.json, report.md and the plots (default: reports/<model>, e.g. "
        "reports/quickstart-1 for saved_models/quickstart/1, reports/model for model.keras)",
    )
    parser.add_argument("--output-key", help="SavedModel signature output holding the logits")
    parser.add_argument("--input-key", help="SavedModel signature input holding the images")
    parser.add_argument("--surrogate", help="model the 'transfer' attack crafts on")
    parser.add_argument("--transfer-attack", default="pgd40", help="attack run on the surrogate")
    parser.add_argument("--masking-examples", type=int, default=200, help="examples used by the masking checks")
    parser.add_argument("--square-queries", type=int, default=1000, help="queries of the masking check's Square")
    parser.add_argument(
        "--next-to-model",
        action="store_true",
        help="also write the JSON with the model (<model>.robustness.json, or <SavedModel>/assets/robustness.json: "
        "inside the exported version folder); off by default",
    )
    parser.add_argument("--no-next-to-model", action="store_true", help=argparse.SUPPRESS)  # the default now
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    parser.add_argument("--fail-on-masking", action="store_true", help="exit with status 3 if a masking check fails")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        threat_model = ThreatModel.parse(args.threat_model, "--threat-model")
        attacks = parse_attack_list(args.attacks) if args.attacks else default_attacks(threat_model)
        data = load_data(args)
        for flag, path in (("--model", args.model), ("--surrogate", args.surrogate)):
            _check_model_path(flag, path)
    except ValueError as error:  # a bad argument or data file: usage error, not a traceback
        parser.error(str(error))
    report = evaluate_robustness(
        args.model,
        data,
        eps=args.eps,
        threat_model=threat_model,
        attacks=attacks,
        batch_size=args.batch_size,
        seed=args.seed,
        restarts=args.restarts,
        progress=not args.no_progress,
        out_dir=args.out or default_out_dir(args.model),
        save_next_to_model=args.next_to_model,
        masking_checker=GradientMaskingChecker(n_examples=args.masking_examples, square_queries=args.square_queries),
        surrogate=args.surrogate,
        transfer_attack=args.transfer_attack,
        output_key=args.output_key,
        input_key=args.input_key,
    )
    print(report_markdown(report))
    if args.fail_on_masking and not report.masking_passed:
        return MASKING_FAILED_EXIT_CODE
    return 0


def default_out_dir(model: str) -> str:
    """``reports/<model>``: the SavedModel folder's name, joined to its parent's when the folder
    is a TF Serving version number (``saved_models/quickstart/1`` -> ``reports/quickstart-1``),
    or the ``.keras`` file's stem."""
    path = os.path.normpath(model)
    name = os.path.basename(path)
    if name.endswith(".keras"):
        name = name[: -len(".keras")]
    elif name.isdigit():
        name = f"{os.path.basename(os.path.dirname(path)) or 'model'}-{name}"
    return os.path.join("reports", name)


def _check_model_path(flag: str, path: str | None) -> None:
    """A one-line usage error for a path that cannot hold a model, before anything loads."""
    if path is None:
        return
    if os.path.isdir(path):
        if not os.path.isfile(os.path.join(path, "saved_model.pb")):
            raise ValueError(f"{flag} {path}: a folder without saved_model.pb is not a SavedModel.")
    elif not os.path.isfile(path):
        raise ValueError(f"{flag} {path}: no such file or folder (a .keras file or a SavedModel folder).")
    elif not path.endswith(".keras"):
        raise ValueError(f"{flag} {path}: not a .keras file or a SavedModel folder.")


if __name__ == "__main__":
    sys.exit(main())
