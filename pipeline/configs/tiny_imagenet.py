"""Tiny-ImageNet, the paper's second dataset (Table 1's lower half, Tables 3-6): 64x64, 200 classes.

Command (DATA_DIR holds the extracted ``tiny-imagenet-200`` archive: wnids.txt,
train/<wnid>/images/*.JPEG, val/images/*.JPEG and val/val_annotations.txt):
    python pipeline/run.py --config tiny_imagenet --data-dir DATA_DIR

The labelled val/ images are the test split; validation (model selection) is 10% of train.
Everything else is cifar10_paper's: ResNet-18 (global average pooling, so 64x64 inputs need
no change) with a 200-way head, L-inf PGD-10 at eps 8/255 (step 2/255), batch 1024, SGD
0.1, 100 epochs, alpha 5, lambda 0.1, random crop and flip. The estimators' local encoder
shrinks its input by 4, so their local maps are 16x16, and their global networks read the
200 logits. The evaluation runs Table 1's L-inf attacks: PGD-40, AutoAttack, FWA-40, TI-DIM.
The L2 half: add ``--set attack.threat_model=L2 --set attack.eps=0.5 --set attack.step_size=null
--set 'evaluate.attacks=["pgd40", "cw_l2", "ddn"]'`` (see cifar10_paper_l2).

Expected result (the paper's Table 1, ResNet-18, L-inf 8/255; NOT measured: one
ResNet-18 epoch on 64x64 images takes hours on a CPU):
    | model       | clean | PGD-40 | AA    | FWA-40 | TI-DIM |
    | Standard AT | 48.40 | 17.35  | 11.27 | 10.29  | 27.84  |
    | MIAT        | 48.41 | 18.67  | 12.29 | 11.32  | 29.37  |

CI runs this config on a generated miniature of the layout (tests/test_tiny_imagenet.py).
"""

import dataclasses

from mi_keras.evaluation import AttackSpec
from pipeline.configs.cifar10_paper import CONFIG as _CIFAR10
from pipeline.settings import ExportConfig

CONFIG = dataclasses.replace(
    _CIFAR10,
    name="tiny_imagenet",
    data=dataclasses.replace(_CIFAR10.data, dataset="tiny_imagenet:tiny-imagenet-200"),
    evaluate=dataclasses.replace(
        _CIFAR10.evaluate,
        attacks=(AttackSpec.PGD40, AttackSpec.AUTOATTACK, AttackSpec.FWA40, AttackSpec.TI_DIM),
    ),
    export=ExportConfig(name="tiny_imagenet"),
)
