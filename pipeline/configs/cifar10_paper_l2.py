"""CIFAR-10, the paper's L2 defenses (Table 1's right half, Table 4): ResNet-18, L2 eps 0.5.

Command (CIFAR-10 prepared for tensorflow_datasets under DATA_DIR, as for cifar10_paper):
    python pipeline/run.py --config cifar10_paper_l2 --data-dir DATA_DIR

The other rows of the table are overrides of this config: TRADES / MART (standard AT with
another loss) ``--set pretrain.base_loss=trades`` (``mart``); NAMID_T / NAMID_M
``--set train.base_loss=trades`` (``mart``); WMIM ``--set train.method=wmim``.

Everything is cifar10_paper's (ResNet-18, batch 1024, SGD 0.1, 100 epochs, alpha 5,
lambda 0.1, estimators of 2048 units...) except the threat model, which every stage shares:
standard AT, the estimators (trained on L2 noise) and MIAT train with L2 PGD-10, eps 0.5,
step eps / 4; the evaluation runs PGD-40, CW-L2 (20 iterations, bounded at eps) and DDN
(20 iterations, bounded at eps) at eps 0.5.

Expected result (the paper's Table 4, ResNet-18, L2 0.5; NOT measured: one ResNet-18
PGD-10 epoch takes ~98 min on a 2-core CPU, docs/benchmarks.md):
    | model       | clean | PGD-40 | CW    | DDN   |
    | Standard AT | 83.97 | 61.69  | 30.96 | 29.34 |
    | MIAT        | 84.35 | 62.38  | 34.48 | 32.41 |

CPU-scale run (2,000 training images, WRN-16-1, 3 epochs per stage; wall time:
docs/benchmarks.md):
    python pipeline/run.py --config cifar10_paper_l2 --data-dir DIR \
        --set 'data.dataset=npz:cifar10/cifar10_{split}.npz' --set data.take=2000 \
        --set data.validation_size=0.004 --set data.test_take=200 \
        --set model.architecture=wide_resnet --set 'model.options={"depth": 16, "widen_factor": 1}' \
        --set pretrain.epochs=3 --set pretrain.batch_size=128 --set 'pretrain.lr_milestones=[]' \
        --set train.epochs=3 --set train.batch_size=128 --set 'train.lr_milestones=[]' \
        --set estimators.units=64 --set estimators.epochs=2 --set estimators.batch_size=128 \
        --set estimators.learning_rate=1e-3 --set 'estimators.lr_milestones=[]' \
        --set evaluate.masking_checks=false --set evaluate.last_epoch=false --set evaluate.batch_size=100
    Accuracy (%) on 200 test examples, L2 eps = 0.5
    | model       | clean | PGD-40 | CW-L2 | DDN   |
    | Standard AT | 28.50 | 16.50  | 14.00 | 16.00 |
    | MIAT        | 17.00 | 13.00  | 12.00 | 12.50 |
(three epochs on 2,000 images: the models have barely started to learn; the run shows the
L2 configuration end to end, not the paper's comparison).
"""

import dataclasses

from mi_keras.evaluation import AttackSpec
from pipeline.configs.cifar10_paper import CONFIG as _LINF
from pipeline.settings import AttackConfig, ExportConfig

CONFIG = dataclasses.replace(
    _LINF,
    name="cifar10_paper_l2",
    attack=AttackConfig(threat_model="L2", eps=0.5, step_size=None, steps=10, random_start="normal"),
    evaluate=dataclasses.replace(
        _LINF.evaluate,
        attacks=(AttackSpec.PGD40, AttackSpec.CW_L2, AttackSpec.DDN),
        bless_attack=AttackSpec.PGD40,
    ),
    export=ExportConfig(name="cifar10_paper_l2"),
)
