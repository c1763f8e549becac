"""The study driver's smoke test: the paper's two CIFAR-10 recipes, reduced to seconds.

Command (what CI runs, through tests/test_study_driver.py):
    python pipeline/study.py --study smoke --results-dir /tmp/smoke/results --work-root /tmp/smoke/work

It proves that ``cifar10_paper`` (ResNet-18 recipe), ``cifar10_code`` (the official code's
WRN-34-10 recipe) and ``cifar10_paper_l2`` (the L2 defenses: L2 PGD training, estimators on L2
noise, L2 PGD-40 and AutoAttack) run from the two npz files in ../shared/data through the driver:
each at 200 training images, one epoch, a WRN-10-1 in place of their networks, PGD-2 in
training, 16-unit estimators, and evaluation subsets of a few dozen images. Its numbers
measure nothing (one epoch): it checks the plumbing, the result schema and resumption.
"""

from pipeline.study_driver.study import Method, Study, StudyDataset, StudyEvaluation

_TINY = (
    "data.dataset=npz:cifar10/cifar10_{split}.npz",
    "data.take=200",
    "data.test_take=100",
    "data.validation_size=0.002",
    "model.architecture=wide_resnet",
    'model.options={"depth": 10, "widen_factor": 1}',
    "attack.steps=2",
    "pretrain.epochs=1",
    "pretrain.batch_size=50",
    "pretrain.warmup_epochs=0",
    "train.epochs=1",
    "train.batch_size=50",
    "train.warmup_epochs=0",
    "estimators.units=16",
    "estimators.epochs=1",
    "estimators.batch_size=50",
)

STUDY = Study(
    name="smoke",
    datasets=(
        StudyDataset(name="cifar10_paper", config="cifar10_paper", data_dir="../shared/data", overrides=_TINY),
        StudyDataset(name="cifar10_code", config="cifar10_code", data_dir="../shared/data", overrides=_TINY),
        StudyDataset(name="cifar10_paper_l2", config="cifar10_paper_l2", data_dir="../shared/data", overrides=_TINY),
    ),
    methods=(Method.STANDARD_AT, Method.MIAT_LAMBDA01),
    seeds=(0,),
    lambda_remedy=("train.lam_ramp_epochs=1",),
    evaluation=StudyEvaluation(
        pgd_examples=40,
        autoattack_examples=10,
        autoattack_seeds=(0,),
        masking_examples=20,
        masking_square_queries=20,
        mi_probe_examples=20,
        batch_size=20,
    ),
)
