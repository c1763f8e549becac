"""Why the paper's lambda = 0.1 stalls MIAT, and which remedy lets it train (docs/lambda.md).

Two measurements, both written as JSON under ``results/lambda_remedies/``:

``--gradients``: at the start of stage 2 (a fresh classifier and the trained estimators of
a pipeline root), the global gradient norm over the classifier's weights of each loss term:
the cross-entropy, the two batch cosines and the lambda term
``mean_selected(I_A(n; h(x_adv)) - I_N(x; h(x_adv)))`` under every `MIDifference`
reduction and under InfoNCE scoring; the same for the trained standard-AT classifier; and,
to test the LayerNorm explanation, the gradient of the lambda term with respect to the
logits when the same logits are scaled up.

``--curves``: the quick-start's MIAT trained with lambda 0.1 under each remedy (and lambda
0, the released code), its validation clean and PGD accuracy per epoch (the test split is
not touched: the remedy is chosen on validation; the study then tests it).

Command (it trains the quick-start's shared stages first when ROOT has none; about 40 min
on 2 idle cores, the curves being 8 MIAT runs of 30 epochs):
    python pipeline/experiments/lambda_remedies.py --gradients --curves --report --pipeline-root ROOT
``--report`` alone renders docs/lambda_measurements.md (and its plot) from the JSONs.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import sys

_REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
if str(_REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(_REPO_ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from mi_keras.enums import Bound, MIDifference  # noqa: E402
from mi_keras.losses.adversarial_losses import base_loss  # noqa: E402
from mi_keras.losses.batch_statistics import batch_cosine, masked_count  # noqa: E402
from mi_keras.losses.miat_loss import mi_difference  # noqa: E402
from mi_keras.losses.selection import selection_masks  # noqa: E402
from mi_keras.models import AdversarialModel  # noqa: E402
from mi_keras.models.architectures import build_classifier  # noqa: E402
from pipeline.components.artifacts import ClassifierFiles, EstimatorFiles  # noqa: E402
from pipeline.components.builders import classifier_optimizer, mi_defense_model, training_attack  # noqa: E402
from pipeline.components.stage_data import StageData  # noqa: E402
from pipeline.orchestration.runner import PipelineRunner  # noqa: E402
from pipeline.orchestration.stage import StageName  # noqa: E402
from pipeline.settings import load_config, with_overrides  # noqa: E402
from pipeline.stages import all_stages  # noqa: E402

# Each remedy as --set assignments on top of lambda 0.1 (docs/lambda.md explains them).
REMEDIES = {
    "paper (none)": [],
    "clean warm-up, 2 epochs (the code's)": ["train.warmup_epochs=2"],
    "lambda ramp, 10 epochs": ["train.lam_ramp_epochs=10"],
    "from the standard-AT weights": ["train.init_from_pretrain=true"],
    "batch-mean difference": ["train.difference=batch_mean"],
    "relative difference": ["train.difference=relative"],
    "InfoNCE scoring": ["train.mi_bound=infonce"],
    "batch-mean difference + lambda ramp, 10 epochs": ["train.difference=batch_mean", "train.lam_ramp_epochs=10"],
    "batch-mean difference, from the standard-AT weights": [
        "train.difference=batch_mean",
        "train.init_from_pretrain=true",
    ],
}
LOGIT_SCALES = (1.0, 3.0, 10.0, 30.0)
YOUNG_STEPS = (0, 5, 20, 60, 200)


def global_norm(tape, target, variables) -> float:
    return float(tf.linalg.global_norm([g for g in tape.gradient(target, variables) if g is not None]))


def term_gradients(model, x, y, seed: int) -> dict:
    """Gradient norms of each term for ``model``'s classifier on one batch (the step's own code path)."""
    x_adv = model.attack(model.classifier, x, y, seed=tf.constant([seed, 0]))
    context = model._gradient_free_inputs(x, x_adv)
    variables = model.classifier.trainable_variables
    with tf.GradientTape(persistent=True) as tape:
        adversarial_logits = model.classifier(x_adv, training=True)
        clean_logits = model.classifier(x, training=True)
        mi = model._mi_terms(clean_logits, adversarial_logits, context)
        selected = selection_masks(clean_logits, adversarial_logits, y, model.selection)["fooled"]
        terms = {
            "cross_entropy": tf.reduce_mean(base_loss(model.base_loss, clean_logits, adversarial_logits, y, model.beta))
        }
        terms["cosines"] = tf.abs(
            1.0 - batch_cosine(mi.natural_mi_natural * selected, mi.natural_mi_adversarial * selected)
        ) + tf.abs(1.0 - batch_cosine(mi.adversarial_mi_natural * selected, mi.adversarial_mi_adversarial * selected))
        for reduction in MIDifference:
            terms[f"difference_{reduction.value}"] = mi_difference(
                mi.adversarial_mi_adversarial, mi.natural_mi_adversarial, selected, reduction
            )
        index = context["positive_index"]
        infonce = {
            name: estimator.score(
                features, adversarial_logits, training=False, positive_index=index, bound=Bound.INFONCE
            )
            for name, estimator, features in (
                ("natural", model.natural_estimator, context["natural_features"]),
                ("adversarial", model.adversarial_estimator, context["adversarial_features"]),
            )
        }
        terms["difference_infonce"] = mi_difference(
            infonce["adversarial"], infonce["natural"], selected, MIDifference.SELECTED_MEAN
        )
    norms = {name: global_norm(tape, value, variables) for name, value in terms.items()}
    return {
        "selected": int(masked_count(selected)),
        "batch": int(x.shape[0]),
        "logit_std": float(tf.math.reduce_std(adversarial_logits)),
        "gradient_norm": norms,
        "ratio_to_cross_entropy": {name: norm / norms["cross_entropy"] for name, norm in norms.items()},
        "values": {name: float(value) for name, value in terms.items()},
        "logit_scaling": logit_scaling(model, adversarial_logits, context, selected),
    }


def logit_scaling(model, adversarial_logits, context, selected) -> dict:
    """``|d(lambda term) / d(logits)|`` at the same logits scaled by s (LayerNorm: shrinks as 1/s)."""
    out = {}
    for scale in LOGIT_SCALES:
        logits = tf.Variable(adversarial_logits * scale)
        with tf.GradientTape() as tape:
            index = context["positive_index"]
            natural = model.natural_estimator.score(
                context["natural_features"], logits, training=False, positive_index=index
            )
            adversarial = model.adversarial_estimator.score(
                context["adversarial_features"], logits, training=False, positive_index=index
            )
            term = mi_difference(adversarial, natural, selected, MIDifference.SELECTED_MEAN)
        out[str(scale)] = float(tf.norm(tape.gradient(term, logits)))
    return out


def gradients(root: pathlib.Path, seeds: tuple[int, ...]) -> dict:
    config = with_overrides(load_config("quickstart"), ["train.lam=0.1"])
    result = PipelineRunner(all_stages(), config, root, verbose=0).run([StageName.PRETRAIN, StageName.ESTIMATORS])
    data = StageData(result.outputs[StageName.INGEST]["dataset"])
    estimators = EstimatorFiles.of(result.outputs[StageName.ESTIMATORS]["estimators"])
    x, y = (array[:64] for array in data.arrays("train"))
    y = tf.constant(y)
    train = data.split("train", 64, seed=0).repeat()
    measured = {}
    for seed in seeds:
        keras.utils.set_random_seed(seed)
        classifier = build_classifier(
            config.model.architecture, data.image_shape, data.num_classes, **config.model.options
        )
        # Standard AT for a few steps: the young classifiers MIAT meets in its first epoch.
        young = AdversarialModel(classifier, attack=training_attack(config.attack, seed), seed=seed)
        young.compile(optimizer=classifier_optimizer(config.train, 1))
        batches, done = iter(train), 0
        for steps in YOUNG_STEPS:
            for _ in range(steps - done):
                young.train_on_batch(*next(batches))
            done = steps
            measured[f"seed {seed}, after {steps} standard-AT steps"] = term_gradients(
                mi_defense_model(config, classifier, estimators, 1), x, y, seed
            )
    trained = keras.saving.load_model(ClassifierFiles.of(result.outputs[StageName.PRETRAIN]["model"]).best)
    measured["standard-AT classifier (trained)"] = term_gradients(
        mi_defense_model(config, trained, estimators, 1), x, y, 0
    )
    return {"config": "quickstart", "batch": 64, "estimators": str(estimators.directory), "measurements": measured}


def curves(root: pathlib.Path, epochs: int | None) -> dict:
    runs = {
        "lambda 0 (released code)": ["train.lam=0"],
        **{name: ["train.lam=0.1", *sets] for name, sets in REMEDIES.items()},
    }
    out = {}
    for name, assignments in runs.items():
        if epochs is not None:
            assignments = [*assignments, f"train.epochs={epochs}"]
        config = with_overrides(load_config("quickstart"), assignments)
        print(f"[lambda] {name}: {' '.join(assignments)}", flush=True)
        result = PipelineRunner(all_stages(), config, root, verbose=0).run([StageName.TRAIN])
        history = ClassifierFiles.of(result.outputs[StageName.TRAIN]["model"]).read_history()
        out[name] = {
            "overrides": assignments,
            "val_clean_accuracy": [row["val_clean_accuracy"] for row in history],
            "val_adversarial_accuracy": [row["val_adversarial_accuracy"] for row in history],
            "train_loss": [row.get("loss") for row in history],
        }
    return {"config": "quickstart", "runs": out}


GRADIENT_TERMS = (
    ("cosines", "cosines"),
    ("difference_selected_mean", "lambda term, selected mean (paper)"),
    ("difference_batch_mean", "batch mean"),
    ("difference_relative", "relative"),
    ("difference_infonce", "InfoNCE, selected mean"),
)


def _at(pairs: list[tuple[float, float]], epoch: int) -> str:
    """Validation clean / PGD accuracy (%) at ``epoch`` (1-based), or "-" if the run stopped before it."""
    if len(pairs) < epoch:
        return "-"
    clean, adversarial = pairs[epoch - 1]
    return f"{100 * clean:.1f} / {100 * adversarial:.1f}"


def render(out: pathlib.Path, report: pathlib.Path) -> None:
    """docs/lambda_measurements.md and its curves plot, from the two JSONs alone."""
    lines = [
        "# Lambda measurements",
        "",
        f"Generated by `python pipeline/experiments/lambda_remedies.py --report` from `{out.name}/gradients.json` and "
        f"`{out.name}/curves.json`; docs/lambda.md explains them. Do not edit by hand.",
    ]
    gradients_path, curves_path = out / "gradients.json", out / "curves.json"
    if gradients_path.is_file():
        measured = json.loads(gradients_path.read_text())["measurements"]
        lines += [
            "",
            "## Gradient norm of each term over the classifier's weights, as a multiple of the cross-entropy's",
            "",
            "Quick-start estimators, one training batch of 64, lambda and alpha left out (the loss multiplies the "
            "lambda term by alpha * lambda = 0.5 and the cosines by alpha = 5). Last column: the lambda term's "
            "gradient norm with respect to the logits when the same logits are scaled by 1, 3, 10 and 30 "
            "(a LayerNorm amplification would make it fall as 1 / scale).",
            "",
            "| classifier | selected / 64 | logit std | CE grad | "
            + " | ".join(title for _, title in GRADIENT_TERMS)
            + " | d(term)/d(logits) at scale 1, 3, 10, 30 |",
            "|---" * (5 + len(GRADIENT_TERMS)) + "|",
        ]
        for name, row in measured.items():
            ratios = " | ".join(f"{row['ratio_to_cross_entropy'][key]:.2f}" for key, _ in GRADIENT_TERMS)
            scaling = ", ".join(f"{value:.3g}" for value in row["logit_scaling"].values())
            lines.append(
                f"| {name} | {row['selected']} | {row['logit_std']:.3f} | {row['gradient_norm']['cross_entropy']:.3f} | {ratios} | {scaling} |"
            )
    if curves_path.is_file():
        runs = json.loads(curves_path.read_text())["runs"]
        lines += [
            "",
            "## Quick-start MIAT under each remedy: validation accuracy (clean / PGD-10), never the test split",
            "",
            "| run | overrides | epoch 5 | epoch 10 | epoch 20 | last | best (clean + PGD) / 2 |",
            "|---|---|---|---|---|---|---|",
        ]
        for name, run in runs.items():
            pairs = list(zip(run["val_clean_accuracy"], run["val_adversarial_accuracy"]))
            best = max(pairs, key=lambda pair: pair[0] + pair[1])
            lines.append(
                f"| {name} | `{' '.join(run['overrides'])}` | {_at(pairs, 5)} | {_at(pairs, 10)} | {_at(pairs, 20)} | {_at(pairs, len(pairs))} | {100 * best[0]:.1f} / {100 * best[1]:.1f} |"
            )
        plot_curves(runs, report.with_name("lambda_curves.png"))
        lines += ["", "![validation PGD accuracy per epoch under each remedy](lambda_curves.png)"]
    report.write_text("\n".join(lines) + "\n")


def plot_curves(runs: dict, path: pathlib.Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(11, 4))
    for name, run in runs.items():
        epochs = range(1, len(run["val_clean_accuracy"]) + 1)
        axes[0].plot(epochs, run["val_clean_accuracy"], label=name)
        axes[1].plot(epochs, run["val_adversarial_accuracy"], label=name)
    for axis, title in zip(axes, ("validation clean accuracy", "validation PGD-10 accuracy")):
        axis.set_xlabel("epoch")
        axis.set_title(title)
    axes[1].legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python pipeline/experiments/lambda_remedies.py", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--pipeline-root", default=str(_REPO_ROOT / "pipeline_root"))
    parser.add_argument("--gradients", action="store_true", help="measure the terms' gradient norms")
    parser.add_argument("--curves", action="store_true", help="train the quick-start MIAT under each remedy")
    parser.add_argument("--epochs", type=int, default=None, help="override train.epochs of the curves")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--out", default=str(_REPO_ROOT / "results" / "lambda_remedies"))
    parser.add_argument("--report", action="store_true", help="render docs/lambda_measurements.md from the JSONs")
    parser.add_argument("--report-path", default=str(_REPO_ROOT / "docs" / "lambda_measurements.md"))
    args = parser.parse_args(argv)
    if not (args.gradients or args.curves or args.report):
        parser.error("say --gradients, --curves, --report or several")
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    root = pathlib.Path(args.pipeline_root)
    if args.gradients:
        (out / "gradients.json").write_text(json.dumps(gradients(root, tuple(args.seeds)), indent=1) + "\n")
        print(f"Wrote {out / 'gradients.json'}")
    if args.curves:
        (out / "curves.json").write_text(json.dumps(curves(root, args.epochs), indent=1) + "\n")
        print(f"Wrote {out / 'curves.json'}")
    if args.report:
        report = pathlib.Path(args.report_path)
        report.parent.mkdir(parents=True, exist_ok=True)
        render(out, report)
        print(f"Wrote {report}")
    return 0


if __name__ == "__main__":
    from pipeline.run import configure_threads

    configure_threads()
    sys.exit(main())
