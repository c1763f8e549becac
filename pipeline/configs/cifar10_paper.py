"""CIFAR-10, the paper's setting (Zhou et al., ICML 2022, section 4.1): ResNet-18, L-inf 8/255.

Command (needs CIFAR-10 prepared for tensorflow_datasets under DATA_DIR, e.g. by
`tfds build cifar10 --data_dir DATA_DIR`; with internet, add --set data.download=true):
    python pipeline/run.py --config cifar10_paper --data-dir DATA_DIR

Settings: ResNet-18 (the standard CIFAR variant); training attack PGD-10, eps 8/255, step
2/255, start x + 0.001 N(0, I); batch 1024; SGD lr 0.1, momentum 0.9, weight decay 2e-4;
100 epochs, lr / 10 after epochs 75 and 90; alpha 5, lambda 0.1; random crop (padding 4)
and horizontal flip. The standard-AT baseline (the estimators' frozen target) trains with
the same settings. Estimators: 2048 units, the code's stage-1 "beta" run (25 epochs, batch
400, Adam 1e-2, lr / 10 after epochs 10 and 20), same threat model as stage 2. Model
selection: best (clean + PGD) / 2 on a validation split of 10% of the training set (the
paper selected on the test set; the last epoch is evaluated too).

Expected result (the paper's Table 1, ResNet-18, L-inf 8/255; NOT measured: on a
2-core CPU one ResNet-18 PGD-10 epoch takes ~98 min, docs/benchmarks.md; the run needs a GPU):
    | model       | clean | PGD-40 | AutoAttack |
    | Standard AT | 83.39 | 42.38  | 39.01      |
    | MIAT        | 83.41 | 44.79  | 39.26      |
"""

from mi_keras.data import AugmentPolicy
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

_TRAINING = dict(
    epochs=100,
    batch_size=1024,
    learning_rate=0.1,
    momentum=0.9,
    weight_decay=2e-4,
    lr_milestones=(75, 90),
    lr_decay=0.1,
)

CONFIG = PipelineConfig(
    name="cifar10_paper",
    seed=0,
    data=DataConfig(dataset="cifar10", validation_size=0.1, augment=AugmentPolicy.CROP_FLIP),
    model=ModelConfig(architecture=Architecture.RESNET18),
    attack=AttackConfig(threat_model="Linf", eps=8 / 255, step_size=2 / 255, steps=10, random_start="normal"),
    pretrain=TrainingConfig(**_TRAINING),
    estimators=EstimatorConfig(
        units=2048, epochs=25, batch_size=400, learning_rate=1e-2, lr_milestones=(10, 20), lr_decay=0.1
    ),
    train=MIATConfig(**_TRAINING, alpha=5.0, lam=0.1, selection="logits"),
    evaluate=EvaluateConfig(
        attacks=(AttackSpec.FGSM, AttackSpec.PGD20, AttackSpec.PGD40, AttackSpec.CW_INF, AttackSpec.AUTOATTACK),
        batch_size=500,
    ),
    export=ExportConfig(name="cifar10_paper"),
)
