"""Fashion-MNIST, L-inf eps 0.1, the TRADES small CNN.

Command (the official IDX files; on Debian `apt-get install dataset-fashion-mnist` puts
them in /usr/share/datasets/fashion-mnist):
    python pipeline/run.py --config fashion_mnist
With tensorflow_datasets' prepared Fashion-MNIST instead: add --set data.dataset=fashion_mnist.

Settings: as the ``mnist`` config (SmallCNN, PGD-10 with step eps / 4, batch 128, SGD 0.01
with momentum 0.9, 20 epochs, lr / 10 after epoch 15, alpha 5, lambda 0.1, 2048-unit
estimators) at eps 0.1, the usual Fashion-MNIST radius.

Expected result: NOT measured here (about 3.5 h on this 2-core CPU, as for MNIST), and no
published MIAT number exists for Fashion-MNIST. The run's final table compares the two
models on the 10,000 test images; MIAT should keep standard AT's clean accuracy and match
or exceed its PGD accuracy.
"""

from mi_keras.evaluation import AttackSpec
from mi_keras.models.architectures import Architecture
from pipeline.orchestration.config import (
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
    epochs=20, batch_size=128, learning_rate=0.01, momentum=0.9, weight_decay=2e-4, lr_milestones=(15,), lr_decay=0.1
)

CONFIG = PipelineConfig(
    name="fashion_mnist",
    seed=0,
    data=DataConfig(dataset="idx:/usr/share/datasets/fashion-mnist", validation_size=0.1),
    model=ModelConfig(architecture=Architecture.SMALL_CNN),
    attack=AttackConfig(threat_model="Linf", eps=0.1, steps=10),
    pretrain=TrainingConfig(**_TRAINING),
    estimators=EstimatorConfig(units=2048, epochs=10, batch_size=400, learning_rate=1e-3, lr_milestones=()),
    train=MIATConfig(**_TRAINING, alpha=5.0, lam=0.1),
    evaluate=EvaluateConfig(
        attacks=(AttackSpec.FGSM, AttackSpec.PGD20, AttackSpec.PGD40, AttackSpec.CW_INF), batch_size=500
    ),
    export=ExportConfig(name="fashion_mnist"),
)
