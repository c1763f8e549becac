"""MNIST, L-inf eps 0.3, the TRADES small CNN: the classic MNIST robustness setting.

Command (MNIST's four IDX files in DATA_DIR/mnist):
    python pipeline/run.py --config mnist --data-dir DATA_DIR
With tensorflow_datasets' prepared MNIST instead: add --set data.dataset=mnist.

Settings: TRADES' SmallCNN (4 convolutions + 3 dense, valid padding, 312,202 parameters);
the paper's recipe applied to MNIST for every training stage: PGD-10, eps 0.3, step
eps / 4, start x + 0.001 N(0, I); batch 128; SGD lr 0.01, momentum 0.9 (TRADES' MNIST
optimizer), weight decay 2e-4; 20 epochs, lr / 10 after epoch 15; alpha 5, lambda 0.1.
Estimators: 2048 units, 10 epochs, batch 400, Adam 1e-3. Validation: 10% of the
training set (6,000 images); evaluation on the 10,000 test images.

Expected result: NOT measured. At ~240 samples/s for PGD-10 training on a 2-core CPU,
each 54,000-image epoch takes ~4 min, about 3.5 h for the three training stages
(docs/benchmarks.md). For reference, TRADES (Zhang et al., ICML 2019, Table 5) reports 99.36% clean and
96.01% under 40-step PGD for standard AT with this network (100 epochs of PGD-40
training); this shorter PGD-10 schedule should land a little below that, with MIAT at
least as robust as standard AT.
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

_TRAINING = dict(
    epochs=20, batch_size=128, learning_rate=0.01, momentum=0.9, weight_decay=2e-4, lr_milestones=(15,), lr_decay=0.1
)

CONFIG = PipelineConfig(
    name="mnist",
    seed=0,
    data=DataConfig(dataset="idx:mnist", validation_size=0.1),
    model=ModelConfig(architecture=Architecture.SMALL_CNN),
    attack=AttackConfig(threat_model="Linf", eps=0.3, steps=10),
    pretrain=TrainingConfig(**_TRAINING),
    estimators=EstimatorConfig(units=2048, epochs=10, batch_size=400, learning_rate=1e-3, lr_milestones=()),
    train=MIATConfig(**_TRAINING, alpha=5.0, lam=0.1),
    evaluate=EvaluateConfig(
        attacks=(AttackSpec.FGSM, AttackSpec.PGD20, AttackSpec.PGD40, AttackSpec.CW_INF), batch_size=500
    ),
    export=ExportConfig(name="mnist"),
)
