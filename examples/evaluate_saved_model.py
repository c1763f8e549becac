"""
Title: Evaluate a saved model under attack
Description: Robust accuracy of any Keras model or SavedModel, from the command line and from
Python, with the gradient-masking checks.

The evaluation works on any `.keras` file or SavedModel, ours or anyone's, as long as it maps
images in [0, 1] to logits. Run it on the quick-start's export (after `make run`):

```
python examples/evaluate_saved_model.py --model saved_models/quickstart/1 --eps 0.2
```
"""

"""
## Setup
"""

import argparse
import subprocess
import sys

from mi_keras.data import load_dataset
from mi_keras.evaluation import evaluate_robustness
from mi_keras.evaluation.gradient_masking import GradientMaskingChecker
from mi_keras.evaluation.report_files import report_markdown

parser = argparse.ArgumentParser(description="Evaluate a saved model under attack.")
parser.add_argument("--model", default="saved_models/quickstart/1", help="a .keras file or a SavedModel folder")
parser.add_argument("--dataset", default="digits", help="a load_dataset spec, e.g. digits, cifar10, idx:FOLDER")
parser.add_argument("--eps", type=float, default=0.2, help="the L-inf radius")
parser.add_argument("--attacks", default="fgsm,pgd20,pgd40,cw_inf,autoattack")
parser.add_argument("--n-examples", type=int, default=500)
parser.add_argument("--out", default="reports/example", help="where the reports go")
parser.add_argument("--masking-examples", type=int, default=200, help="examples of the gradient-masking checks")
parser.add_argument("--square-queries", type=int, default=1000, help="queries of the masking checks' Square")
args = parser.parse_args()

"""
## From the command line

`python -m mi_keras.evaluation` draws the dataset's test split the way the pipeline does,
attacks the model, runs the gradient-masking checks and writes `report.json` (every number,
attack setting, seed and a SHA-256 of the data), `report.md` and PNG plots under `--out`. It
never writes into the model's folder unless `--next-to-model` asks for it.
"""

command = [
    sys.executable, "-m", "mi_keras.evaluation",
    "--model", args.model,
    "--dataset", args.dataset,
    "--eps", str(args.eps),
    "--attacks", args.attacks,
    "--n-examples", str(args.n_examples),
    "--out", f"{args.out}/cli",
    "--masking-examples", str(args.masking_examples),
    "--square-queries", str(args.square_queries),
    "--no-progress",
]  # fmt: skip
subprocess.run(command, check=True)

"""
## From Python

`evaluate_robustness` takes a model or a path and `(x, y)` arrays or a `tf.data.Dataset`,
and returns a `RobustnessReport`: one result per (attack, eps), the ensemble (a sample counts
as robust only if it survives every attack) and the masking checks.
"""

test, info = load_dataset(args.dataset, "test", batch_size=args.n_examples)
x, y = next(iter(test))  # the first n_examples of the test split
report = evaluate_robustness(
    args.model,
    (x.numpy(), y.numpy()),
    eps=[args.eps],
    attacks=args.attacks.split(","),
    progress=False,
    masking_checker=GradientMaskingChecker(n_examples=args.masking_examples, square_queries=args.square_queries),
    out_dir=f"{args.out}/python",
)
print(report_markdown(report))
print(f"clean {report.clean_accuracy:.3f}")
for result in report.results:
    print(f"{result.name} at eps {result.eps:g}: robust accuracy {result.robust_accuracy:.3f}")
print("gradient-masking checks passed" if report.masking_passed else "WARNING: a gradient-masking check failed")
