"""Does some stabiliser make MIAT train on every seed? Round 1: the screen on Fashion-MNIST.

Command (resumable like cpu_study: a unit whose JSON exists is skipped, a killed unit resumes
its epoch; run it from one frozen checkout, ``git worktree add ../stability <commit>``, so
that every unit trains with the same code, and commit each JSON as it lands):
    python pipeline/study.py --study stability            # every pending unit, in sessions
    python pipeline/study.py --study stability --report   # docs/stability.md from results/

Expected result: pending. Every number will come from the unit JSONs of results/stability/
(``--report``); the round-2 study (the best one or two stabilisers and their combination, at
lambda 0 and 0.1, on Fashion-MNIST and CIFAR-10, NAMID_T with the winner) is defined once
this screen says which stabilisers those are.

What runs: cpu_study's Fashion-MNIST units, same data, seeds, subsets, network, attack and
schedule; the baselines (standard AT, TRADES) are cpu_study's own JSONs, read and never
retrained (`Study.reused`: nothing in their training changed since). MIAT at lambda 0 runs
again: its h(x) and h(x_adv) now share one dropout mask (`MIDefenseModel`'s
``shared_dropout_mask``), and on this network independent masks had added 42% more
"fooled" samples to the selection (results/experiments/dropout_selection.json). New here,
each alone on the paper's loss at lambda 0:
- the official recipe (`pipeline.recipes`: PGD-40 with step 0.2231 eps, batch-softmax
  selection, batch 256, 2 clean warm-up epochs, contrastive estimators with the code's DV,
  Adam 1e-2) with two things scaled, because this study must: the estimators keep the
  study's 256 units (2048 cost 20x the small CNN, measured for cpu_study) and their 25 epochs
  of a 100-epoch run become 4 of this 15-epoch one (Adam's milestones 10, 20 become 2, 3);
- at least 2 selected samples for the MI loss; cosine terms weighted by the selected share;
  cosine epsilon 1 (DV estimates are of order 1 nat); estimators reading standardised
  logits (retrained for it); stage 2 from the standard-AT weights; estimators refitted for
  one epoch every 3 epochs.
Budget, from cpu_study's measured Fashion-MNIST units (18.6 min per MIAT unit, 22 min per
seed of shared stages), about 9 machine-hours for the 24 units.
"""

import dataclasses

from pipeline.studies.cpu_study import STUDY as CPU_STUDY
from pipeline.study_driver.study import Method, Study

_FASHION_MNIST = CPU_STUDY.dataset("fashion_mnist")
# The official recipe with the scaling the docstring states (applied after the recipe).
_OFFICIAL_SCALED = ("estimators.units=256", "estimators.epochs=4", "estimators.lr_milestones=[2, 3]")

STUDY = Study(
    name="stability",
    datasets=(dataclasses.replace(_FASHION_MNIST, method_overrides=((Method.MIAT_OFFICIAL, _OFFICIAL_SCALED),)),),
    methods=(
        Method.STANDARD_AT,
        Method.TRADES,
        Method.MIAT_LAMBDA0,
        Method.MIAT_OFFICIAL,
        Method.MIAT_MIN_SELECTED,
        Method.MIAT_SHARE_WEIGHTED,
        Method.MIAT_COSINE_EPSILON,
        Method.MIAT_STANDARDIZED_LOGITS,
        Method.MIAT_FROM_AT,
        Method.MIAT_REFIT,
    ),
    seeds=(0, 1, 2),
    evaluation=dataclasses.replace(CPU_STUDY.evaluation, autoattack_seeds=()),
    reused=((Method.STANDARD_AT, "cpu_study"), (Method.TRADES, "cpu_study")),
    report="docs/stability.md",
)
