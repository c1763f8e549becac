"""Quick-start: MIAT on the bundled 8x8 digits with a small CNN, L-inf (the default config).

Command:
    python pipeline/run.py          # same as: python pipeline/run.py --config quickstart

Expected result (seed 0; a 1.4 MB SavedModel; wall time: docs/benchmarks.md; a second run
is fully cached and takes seconds):

    Accuracy (%) on 359 test examples, Linf eps = 0.2

    | model                    | clean | FGSM  | PGD-20 | PGD-40 | CW-inf |
    |--------------------------|-------|-------|--------|--------|--------|
    | Standard AT              | 94.15 | 72.14 | 62.12  | 61.00  | 62.40  |
    | MIAT                     | 94.15 | 73.26 | 61.00  | 61.28  | 63.51  |
    | Standard AT (last epoch) | 93.87 | 71.59 | 60.72  | 60.45  | 61.84  |
    | MIAT (last epoch)        | 94.71 | 70.19 | 58.77  | 59.61  | 61.00  |

    Exported model: saved_models/quickstart/1

That table is seed 0; the machine it was measured on reproduces it to the digit, another need not
(other cores or instruction sets change float rounding, which MIAT amplifies; see
docs/reproducibility.md). Expect a spread over seeds like the one measured over seeds 0, 1, 2
(``--set seed=S``) before training randomness was derived from (seed, step), which moved
every number (docs/reproducibility.md), and before MIAT's two forwards shared one dropout mask,
which moved MIAT's: Standard AT 93.59-95.54 clean, 61.00-63.51 PGD-20, 60.17-63.79 PGD-40,
61.56-65.46 CW-inf; MIAT 92.48-93.87 clean, 55.15-57.66 PGD-20, 54.04-55.99 PGD-40,
55.71-60.72 CW-inf. The MIAT row above is one seed: it says nothing about a gain. The run
demonstrates the whole pipeline, not the paper's gain, which was measured on CIFAR-10 with
ResNet-18 (see ``cifar10_paper``); the evaluate stage also prints the health monitor's verdict
(here: the frozen estimators read no natural MI from MIAT's classifier, from epoch 1).

Why these settings (each measured here):
- Data: scikit-learn's 1,797 digits, split 1,294 train / 144 validation (model selection) /
  359 test. Small CNN: TRADES' SmallCNN with ``padding="same"`` (8x8 inputs).
- eps 0.2 (PGD-10, step eps / 4 = 0.05): at eps 0.3 standard AT reached only 27% clean
  accuracy in 20 epochs; at eps 0.1 PGD-20 accuracy was already 85%, leaving little to
  compare. At 0.2 both models learn (~93% clean) and stay far from perfect robustness.
- 30 epochs per classifier, SGD 0.05 with momentum 0.9, lr / 10 after epoch 20: PGD accuracy
  was still rising at epoch 20.
- Estimators with 256 units instead of the paper's 2048: the 8x8 images give 2x2 local maps,
  and 2048 units made a stage-1 epoch 8.5x slower (17.2 s vs 2.0 s). 5 epochs, Adam 1e-3.
- lambda 0 (the released code's value) instead of the paper's 0.1: with lambda 0.1 the small
  CNN stayed at chance accuracy for all 30 epochs; shorter runs with lambda 0.01 or 0.05,
  alpha 0.5 to 2, or gradient clipping at norm 1 stayed at chance for 6 to 12 epochs. On one
  batch at initialisation, the gradient of the MI-difference term (mean over the batch) was
  ~20x that of the cross-entropy, and early in training it is averaged over the one or two
  selected samples. alpha stays 5.
- Evaluation on the whole test split with the gradient-masking checks; the tuner is off
  (``--stages tune`` or ``--set tune.enabled=true`` turns it on).
"""

from mi_keras.evaluation import AttackSpec
from mi_keras.models.architectures import Architecture
from pipeline.settings import (
    AttackConfig,
    DataConfig,
    EstimatorConfig,
    EvaluateConfig,
    ExportConfig,
    MIATConfig,
    ModelConfig,
    PipelineConfig,
    TrainingConfig,
)

CONFIG = PipelineConfig(
    name="quickstart",
    seed=0,
    data=DataConfig(dataset="digits", validation_size=0.1, test_size=0.2),
    model=ModelConfig(architecture=Architecture.SMALL_CNN, options={"padding": "same"}),
    attack=AttackConfig(threat_model="Linf", eps=0.2, steps=10),
    pretrain=TrainingConfig(epochs=30, batch_size=64, learning_rate=0.05, lr_milestones=(20,)),
    estimators=EstimatorConfig(units=256, epochs=5, batch_size=128, learning_rate=1e-3, lr_milestones=()),
    train=MIATConfig(epochs=30, batch_size=64, learning_rate=0.05, lr_milestones=(20,), alpha=5.0, lam=0.0),
    evaluate=EvaluateConfig(attacks=(AttackSpec.FGSM, AttackSpec.PGD20, AttackSpec.PGD40, AttackSpec.CW_INF)),
    export=ExportConfig(name="quickstart"),
)
