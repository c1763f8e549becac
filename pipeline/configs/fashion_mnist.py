"""Fashion-MNIST, L-inf eps 0.1, the TRADES small CNN.

Command (the official IDX files; on Debian `apt-get install dataset-fashion-mnist` puts
them in /usr/share/datasets/fashion-mnist):
    python pipeline/run.py --config fashion_mnist
With tensorflow_datasets' prepared Fashion-MNIST instead: add --set data.dataset=fashion_mnist.

Settings: as the ``mnist`` config (SmallCNN, PGD-10 with step eps / 4, batch 128, SGD 0.01
with momentum 0.9, 20 epochs, lr / 10 after epoch 15, alpha 5, lambda 0.1, 2048-unit
estimators) at eps 0.1, the usual Fashion-MNIST radius.

Expected result: NOT measured (about 3.5 h on 2 CPU cores, as for MNIST: docs/benchmarks.md), and no
published MIAT number exists for Fashion-MNIST. The run's final table compares the two
models on the 10,000 test images; MIAT should keep standard AT's clean accuracy and match
or exceed its PGD accuracy.
"""

import dataclasses

from pipeline.configs.mnist import CONFIG as _MNIST
from pipeline.settings import ExportConfig

CONFIG = dataclasses.replace(
    _MNIST,
    name="fashion_mnist",
    data=dataclasses.replace(_MNIST.data, dataset="idx:/usr/share/datasets/fashion-mnist"),
    attack=dataclasses.replace(_MNIST.attack, eps=0.1),
    export=ExportConfig(name="fashion_mnist"),
)
