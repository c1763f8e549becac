"""The pipeline's settings: typed sections, ``--set key=value`` overrides and validation.

A config is a `PipelineConfig` built in a Python file of ``pipeline/configs/`` (its module
docstring carries the command and the expected result). Keys are dotted, ``section.field``
(``attack.eps``, ``train.epochs``); ``name`` and ``seed`` sit at the top level.

Example:
```python
config = load_config("quickstart")
config = with_overrides(config, ["train.epochs=3", "attack.eps=8/255"])
validate(config)  # raises ConfigError naming every bad key before any work starts
```
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
import importlib.util
import pathlib
import typing
from typing import Any

from mi_keras.data import AugmentPolicy, DatasetSource, DatasetSpec
from mi_keras.enums import (
    BaseLoss,
    Bound,
    DVVariant,
    EstimatorObjective,
    LogitNormalization,
    MIDifference,
    ParsableEnum,
    RandomStart,
    Selection,
    ThreatModel,
)
from mi_keras.evaluation.attack_spec import AttackSpec
from mi_keras.models.architectures import Architecture
from pipeline.orchestration.config_values import ConfigError, coerce

CONFIGS_DIR = pathlib.Path(__file__).resolve().parent / "configs"


class Optimizer(ParsableEnum):
    """The optimizer of a training stage."""

    SGD = "sgd"  # the paper's: momentum 0.9, weight decay 2e-4
    ADAM = "adam"  # the official code's estimator optimizer


class DefenseMethod(ParsableEnum):
    """What the ``train`` stage trains (the baselines of the paper's tables)."""

    MIAT = "miat"  # NAMID: L_base + alpha * L_mi with the two frozen stage-1 estimators
    WMIM = "wmim"  # L_base - alpha * I(x_adv; h(x_adv)) (Zhu et al.), stage-1 natural estimator


class TuneObjective(ParsableEnum):
    """What the tuner maximises on the validation split."""

    ADVERSARIAL = "adversarial"  # PGD accuracy
    MEAN = "mean"  # (clean + PGD) / 2, the model-selection score


class TunerAlgorithm(ParsableEnum):
    """The KerasTuner search algorithm."""

    RANDOM = "random"
    BAYESIAN = "bayesian"


@dataclasses.dataclass
class DataConfig:
    """The examples (see `mi_keras.data.load_dataset`).

    Attributes:
        dataset: ``"digits"``, a tensorflow_datasets name, ``"idx:DIR"``, ``"npz:FILE"``...
        validation_size: fraction of the training data carved out for model selection.
        test_size: fraction held out for testing when the source has no test split (digits).
        split_seed: decides which examples go to validation and test (kept apart from
            ``seed`` so that runs with different seeds see the same splits).
        augment: ``"none"``, ``"auto"`` (random crop, plus flips where they fit),
            ``"crop"`` or ``"crop_flip"``; training split only.
        take: keep N training examples, drawn at random (reduced runs); None keeps all.
        test_take: keep N test examples, drawn at random; None keeps all.
        download: let tensorflow_datasets download and prepare a dataset that is missing
            under ``--data-dir`` (tfds sources only; needs internet).
        num_classes: the class count, for sources that declare none (an ``.npz`` without
            ``classes``): a label outside ``[0, num_classes)`` then fails at ingest instead
            of adding a class; None counts the largest label + 1.
        image_size: ``height,width`` to resize every image to (needed by a folder of images
            of mixed sizes); None keeps the stored size.
    """

    dataset: str = "digits"
    validation_size: float = 0.1
    test_size: float = 0.2
    split_seed: int = 0
    augment: AugmentPolicy = AugmentPolicy.NONE
    take: int | None = None
    test_take: int | None = None
    download: bool = False
    num_classes: int | None = None
    image_size: tuple[int, ...] | None = None


@dataclasses.dataclass
class ModelConfig:
    """The classifier: a model-zoo architecture and its builder options."""

    architecture: Architecture = Architecture.SMALL_CNN
    options: dict = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class AttackConfig:
    """The training threat model, shared by standard AT, the estimators and MIAT.

    Attributes:
        threat_model: ``"Linf"`` or ``"L2"``.
        eps: radius of the ball, in [0, 1] pixel units for L-inf.
        step_size: PGD step; None means eps / 4 (the paper).
        steps: PGD iterations during training.
        random_start: ``"normal"`` (x + 0.001 N(0, I)), ``"uniform"`` or ``"none"``.
    """

    threat_model: ThreatModel = ThreatModel.LINF
    eps: float = 0.3
    step_size: float | None = None
    steps: int = 10
    random_start: RandomStart = RandomStart.NORMAL

    @property
    def resolved_step_size(self) -> float:
        return self.step_size if self.step_size is not None else self.eps / 4


@dataclasses.dataclass
class TrainingConfig:
    """One adversarial-training run (the standard-AT baseline).

    Attributes:
        epochs: adversarial epochs (warm-up epochs come before them).
        batch_size: global batch (>= 2: the DV bound needs in-batch negatives).
        optimizer: ``"sgd"`` or ``"adam"``.
        learning_rate: initial learning rate.
        momentum: SGD momentum.
        weight_decay: decoupled weight decay of the optimizer.
        lr_milestones: epochs after which the learning rate is multiplied by ``lr_decay``.
        lr_decay: the multiplier at each milestone.
        warmup_epochs: clean (non-adversarial) cross-entropy epochs before the adversarial
            ones (the official code: 2).
        base_loss: ``"ce"`` (standard AT), ``"trades"`` or ``"mart"``.
        beta: TRADES / MART weight.
        recompute_clean: keep one set of classifier activations per step by running the
            clean pass again for its backward pass (same update; less memory, one more
            forward pass; `AdversarialModel`). No effect without a clean pass.
    """

    epochs: int = 10
    batch_size: int = 128
    optimizer: Optimizer = Optimizer.SGD
    learning_rate: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 2e-4
    lr_milestones: tuple[int, ...] = ()
    lr_decay: float = 0.1
    warmup_epochs: int = 0
    base_loss: BaseLoss = BaseLoss.CE
    beta: float = 6.0
    recompute_clean: bool = False


@dataclasses.dataclass
class MIATConfig(TrainingConfig):
    """MIAT training: a `TrainingConfig` plus the MI loss.

    Attributes:
        alpha: weight of the MI loss (paper: 5).
        lam: weight of the MI-difference term (paper: 0.1; released code: 0).
        selection: ``"logits"`` (paper) or ``"batch_softmax"`` (released code).
        use_tuned: take alpha and lambda (and the learning rate when tuned) from the
            ``tune`` stage's best trial instead of this section.
        lam_ramp_epochs: grow lambda linearly from 0 over this many epochs (0: constant,
            the paper). The remedies of docs/lambda.md, with the faithful defaults:
        difference: ``"selected_mean"`` (paper), ``"batch_mean"`` or ``"relative"``.
        mi_bound: score the MI terms with this bound (``"infonce"``) instead of the
            estimators' own; none keeps theirs.
        init_from_pretrain: start from the standard-AT (``pretrain``) weights instead of
            from scratch (the paper trains from scratch).
        method: ``"miat"`` (default) or ``"wmim"``, the paper's WMIM baseline (see
            `mi_keras.models.WMIMModel`): it maximises the stage-1 natural estimator's
            (frozen) MI of the adversarial samples; ``alpha`` weighs that term, the lambda
            settings do not apply.
        attack_steps, attack_step_size: this stage's PGD, when it differs from the shared
            ``attack`` section's (the official code trains MIAT with PGD-40, step 0.007, and
            its baseline with PGD-10); None takes the shared value.
        min_selected, weight_by_selected_share, cosine_epsilon: the stabilisers of
            `mi_keras.models.MIDefenseModel` (defaults: the paper's loss).
        refit_estimators_every: refit the estimators to the classifier every this many
            epochs (`mi_keras.callbacks.EstimatorRefit`; 0: frozen, the paper), for
            ``refit_epochs`` epochs each with the ``estimators`` section's learning rate,
            batch and objective.
    """

    alpha: float = 5.0
    lam: float = 0.1
    selection: Selection = Selection.LOGITS
    use_tuned: bool = False
    lam_ramp_epochs: int = 0
    difference: MIDifference = MIDifference.SELECTED_MEAN
    mi_bound: Bound | None = None
    init_from_pretrain: bool = False
    method: DefenseMethod = DefenseMethod.MIAT
    attack_steps: int | None = None
    attack_step_size: float | None = None
    min_selected: int = 1
    weight_by_selected_share: bool = False
    cosine_epsilon: float = 0.0
    refit_estimators_every: int = 0
    refit_epochs: int = 1


@dataclasses.dataclass
class EstimatorConfig:
    """MIAT stage 1: the natural and adversarial MI estimators (Adam, as the code).

    Attributes:
        units: feature width of the local encoder and global network; None (default)
            follows the classifier's cost (`mi_keras.mi.estimator_width.default_units`:
            the paper's 2048 for a CIFAR ResNet-18, 128 for the TRADES small CNN on MNIST).
        bound: ``"dv"``, ``"jsd"`` or ``"infonce"``.
        dv: ``"exact"`` or ``"reference"`` (the code's variant).
        objective: ``"contrastive"`` (Eq. 5, the code) or ``"mim"`` (Eq. 4).
        selection: ``"logits"`` (paper) or ``"batch_softmax"`` (released code) predictions
            for the robust / fooled masks.
        logit_normalization: ``"none"`` (paper), ``"center"`` or ``"standardize"``: what the
            estimators do to the logits before their global networks, in both stages
            (`mi_keras.enums.LogitNormalization`, a stabiliser).
        epochs, batch_size, learning_rate, lr_milestones, lr_decay: the Adam run.
    """

    units: int | None = None
    bound: Bound = Bound.DV
    dv: DVVariant = DVVariant.EXACT
    objective: EstimatorObjective = EstimatorObjective.CONTRASTIVE
    selection: Selection = Selection.LOGITS
    logit_normalization: LogitNormalization = LogitNormalization.NONE
    epochs: int = 25
    batch_size: int = 400
    learning_rate: float = 1e-2
    lr_milestones: tuple[int, ...] = (10, 20)
    lr_decay: float = 0.1


@dataclasses.dataclass
class TuneConfig:
    """The KerasTuner search over alpha and lambda (optionally the learning rate).

    Attributes:
        enabled: add the ``tune`` stage to a default run (``--stages ... tune`` also runs it).
        algorithm: ``"random"`` or ``"bayesian"``.
        max_trials: the budget, in trials.
        epochs: MIAT epochs per trial.
        objective: ``"adversarial"`` (validation PGD accuracy) or ``"mean"``.
        alpha_min, alpha_max: alpha range, sampled log-uniformly.
        lam_min, lam_max: lambda range, sampled uniformly.
        tune_learning_rate: also search the learning rate in [lr_min, lr_max] (log).
    """

    enabled: bool = False
    algorithm: TunerAlgorithm = TunerAlgorithm.RANDOM
    max_trials: int = 4
    epochs: int = 2
    objective: TuneObjective = TuneObjective.ADVERSARIAL
    alpha_min: float = 0.5
    alpha_max: float = 10.0
    lam_min: float = 0.0
    lam_max: float = 0.5
    tune_learning_rate: bool = False
    lr_min: float = 1e-3
    lr_max: float = 0.2


@dataclasses.dataclass
class EvaluateConfig:
    """Robustness evaluation on the test split, and the blessing thresholds.

    Attributes:
        attacks: attack names (`mi_keras.evaluation.attack_spec.AttackSpec` values).
        batch_size: examples per attack call.
        restarts: random restarts of the PGD-family attacks.
        last_epoch: also evaluate the last-epoch models (the rows "(last epoch)").
        masking_checks: run the gradient-masking checks of `mi_keras.evaluation`.
        mi_probe: measure natural / adversarial MI of robust and fooled samples.
        min_clean_accuracy: blessing threshold on MIAT's clean accuracy.
        min_robust_accuracy: blessing threshold on MIAT's accuracy under ``bless_attack``.
        bless_attack: the attack whose accuracy the blessing checks.
        require_masking_passed: do not bless a model whose masking checks failed.
        require_above_chance: do not bless a model whose clean accuracy is within three
            standard errors of chance (the test split's majority-class share): constant
            or chance predictions.
    """

    attacks: tuple[AttackSpec, ...] = (AttackSpec.FGSM, AttackSpec.PGD20, AttackSpec.PGD40, AttackSpec.CW_INF)
    batch_size: int = 256
    restarts: int = 1
    last_epoch: bool = True
    masking_checks: bool = True
    mi_probe: bool = True
    min_clean_accuracy: float = 0.0
    min_robust_accuracy: float = 0.0
    bless_attack: AttackSpec = AttackSpec.PGD40
    require_masking_passed: bool = True
    require_above_chance: bool = True


@dataclasses.dataclass
class TransferConfig:
    """Black-box transfer (the paper's Tables 2, 5 and 6): off by default.

    The surrogate trains with standard AT under the ``pretrain`` section's settings and the
    shared ``attack``; the attacks are crafted on it at ``attack.eps`` and scored on the
    standard-AT and the trained (MIAT / WMIM) classifiers.

    Attributes:
        enabled: add the ``transfer`` stage to a default run (``--stages transfer`` also runs it).
        architecture: the surrogate's zoo architecture (the paper: VGG-19).
        options: the surrogate builder's options.
        attacks: attack names crafted on the surrogate; empty: the paper's list for the
            threat model (L-inf PGD-40, AutoAttack, FWA-40, TI-DIM; L2 PGD-40, CW-L2, DDN).
        batch_size: examples per attack call.
    """

    enabled: bool = False
    architecture: Architecture = Architecture.VGG19
    options: dict = dataclasses.field(default_factory=dict)
    attacks: tuple[AttackSpec, ...] = ()
    batch_size: int = 256


@dataclasses.dataclass
class ExportConfig:
    """The SavedModel push: ``<base_dir>/<name>/<version>/``.

    Attributes:
        name: the model name (TF Serving's MODEL_NAME).
        base_dir: where model folders live; relative paths start at the current directory.
        require_blessing: export only a model the evaluation blessed.
    """

    name: str = "quickstart"
    base_dir: str = "saved_models"
    require_blessing: bool = True


_SECTIONS = {
    "data": DataConfig,
    "model": ModelConfig,
    "attack": AttackConfig,
    "pretrain": TrainingConfig,
    "estimators": EstimatorConfig,
    "tune": TuneConfig,
    "train": MIATConfig,
    "evaluate": EvaluateConfig,
    "transfer": TransferConfig,
    "export": ExportConfig,
}


@dataclasses.dataclass
class PipelineConfig:
    """Every setting of one pipeline run; fields are coerced to their types on creation.

    Attributes:
        name: the config's name (shown in logs; the default export name).
        seed: seed of weights, attack starts, data order and evaluation.
        deterministic: run with ``tf.config.experimental.enable_op_determinism()``, so that
            every op picks a deterministic algorithm and two runs of one seed on one machine
            (same TensorFlow, same thread count) give the same weights and metrics. Other
            machines still differ (other cores or instruction sets change the order of
            float sums); see docs/reproducibility.md.
        data, model, attack, pretrain, estimators, tune, train, evaluate, transfer, export:
            sections.
    """

    name: str
    seed: int = 0
    deterministic: bool = False
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    attack: AttackConfig = dataclasses.field(default_factory=AttackConfig)
    pretrain: TrainingConfig = dataclasses.field(default_factory=TrainingConfig)
    estimators: EstimatorConfig = dataclasses.field(default_factory=EstimatorConfig)
    tune: TuneConfig = dataclasses.field(default_factory=TuneConfig)
    train: MIATConfig = dataclasses.field(default_factory=MIATConfig)
    evaluate: EvaluateConfig = dataclasses.field(default_factory=EvaluateConfig)
    transfer: TransferConfig = dataclasses.field(default_factory=TransferConfig)
    export: ExportConfig = dataclasses.field(default_factory=ExportConfig)

    def __post_init__(self):
        _coerce_fields(self, prefix="")
        for section_name, section_type in _SECTIONS.items():
            section = getattr(self, section_name)
            if type(section) is not section_type:
                raise ConfigError(
                    f"Config section {section_name!r} must be a {section_type.__name__}; got {type(section).__name__}."
                )
            _coerce_fields(section, prefix=f"{section_name}.")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values (enums as their strings, tuples as lists)."""
        return _plain(dataclasses.asdict(self))


def config_keys() -> list[str]:
    """Every valid ``--set`` key."""
    keys = [field.name for field in dataclasses.fields(PipelineConfig) if field.name not in _SECTIONS]
    for section_name, section_type in _SECTIONS.items():
        keys.extend(f"{section_name}.{field.name}" for field in dataclasses.fields(section_type))
    return keys


def with_overrides(config: PipelineConfig, assignments: list[str]) -> PipelineConfig:
    """A copy of ``config`` with ``key=value`` assignments applied (typed, validated keys)."""
    values = dataclasses.asdict(config)
    known = config_keys()
    for assignment in assignments:
        key, separator, value = assignment.partition("=")
        key = key.strip()
        if not separator:
            raise ConfigError(f"--set expects key=value; got {assignment!r}.")
        if key not in known:
            close = difflib.get_close_matches(key, known, n=3)
            hint = f" Did you mean {', '.join(close)}?" if close else " Run with --list-keys to see them all."
            raise ConfigError(f"Unknown config key {key!r}.{hint}")
        section, _, field = key.rpartition(".")
        (values[section] if section else values)[field] = value
    return _from_dict(values)


def _from_dict(values: dict[str, Any]) -> PipelineConfig:
    sections = {name: section_type(**values[name]) for name, section_type in _SECTIONS.items()}
    top = {key: value for key, value in values.items() if key not in _SECTIONS}
    return PipelineConfig(**top, **sections)


def load_config(name_or_path: str) -> PipelineConfig:
    """The ``CONFIG`` of ``pipeline/configs/<name>.py``, or of a Python file given by path."""
    return load_defined_object(name_or_path, CONFIGS_DIR, "CONFIG", PipelineConfig, "--config")


def load_defined_object(name_or_path: str, directory: pathlib.Path, attribute: str, expected: type, flag: str):
    """``attribute`` of ``<directory>/<name>.py`` (a package of the repository), or of a ``.py`` path.

    The one loader of the plain-Python settings files (configs, studies); a `ConfigError`
    names the flag and the choices.
    """
    path = pathlib.Path(name_or_path)
    if path.suffix == ".py":
        if not path.is_file():
            raise ConfigError(f"{flag}: file {path} does not exist.")
        spec = importlib.util.spec_from_file_location(f"{directory.name}_{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    else:
        available = sorted(file.stem for file in directory.glob("*.py") if not file.name.startswith("_"))
        if name_or_path not in available:
            raise ConfigError(
                f"{flag}: unknown {flag.lstrip('-')} {name_or_path!r}; available: {', '.join(available)} (or a path to a .py file)."
            )
        module = importlib.import_module(f"pipeline.{directory.name}.{name_or_path}")
    value = getattr(module, attribute, None)
    if not isinstance(value, expected):
        raise ConfigError(f"{flag}: {name_or_path} must define {attribute} = {expected.__name__}(...).")
    return value


def available_configs() -> list[str]:
    return sorted(path.stem for path in CONFIGS_DIR.glob("*.py") if not path.name.startswith("_"))


def validate(config: PipelineConfig, data_dir: str | None = None) -> None:
    """Raises `ConfigError` listing every out-of-range setting; returns None when all are valid.

    Args:
        config: the settings.
        data_dir: the ``--data-dir`` flag; relative dataset paths start there.
    """
    problems = [problem for check in _CHECKS for problem in check(config)] + _check_data(config, data_dir)
    if problems:
        raise ConfigError("Invalid pipeline settings:\n  " + "\n  ".join(problems))


def _check_attack(config: PipelineConfig) -> list[str]:
    attack, problems = config.attack, []
    if attack.eps <= 0:
        problems.append(f"attack.eps must be > 0 (the radius of the threat-model ball); got {attack.eps}.")
    elif attack.threat_model == ThreatModel.LINF and attack.eps > 1:
        problems.append(f"attack.eps must be <= 1 for Linf (images are in [0, 1]); got {attack.eps}.")
    if attack.step_size is not None and not 0 < attack.step_size <= attack.eps:
        problems.append(f"attack.step_size must be in (0, attack.eps] = (0, {attack.eps}]; got {attack.step_size}.")
    if attack.steps < 1:
        problems.append(f"attack.steps must be >= 1; got {attack.steps}.")
    return problems


def _check_training(config: PipelineConfig) -> list[str]:
    problems = []
    for name in ("pretrain", "estimators", "train"):
        section = getattr(config, name)
        if section.batch_size < 2:
            problems.append(
                f"{name}.batch_size must be >= 2 (the DV bound uses the other samples of the batch as negatives); got {section.batch_size}."
            )
        if section.epochs < 1:
            problems.append(f"{name}.epochs must be >= 1; got {section.epochs}.")
        if section.learning_rate <= 0:
            problems.append(f"{name}.learning_rate must be > 0; got {section.learning_rate}.")
        if not 0 < section.lr_decay <= 1:
            problems.append(f"{name}.lr_decay must be in (0, 1]; got {section.lr_decay}.")
        milestones = list(section.lr_milestones)
        # Milestones past the last epoch are allowed (they never trigger), as in MultiStepLR.
        if milestones != sorted(set(milestones)) or any(epoch < 1 for epoch in milestones):
            problems.append(f"{name}.lr_milestones must be increasing epochs >= 1; got {milestones}.")
    for name in ("pretrain", "train"):
        section = getattr(config, name)
        if not 0 <= section.momentum < 1:
            problems.append(f"{name}.momentum must be in [0, 1); got {section.momentum}.")
        if section.weight_decay < 0:
            problems.append(f"{name}.weight_decay must be >= 0; got {section.weight_decay}.")
        if section.warmup_epochs < 0:
            problems.append(f"{name}.warmup_epochs must be >= 0; got {section.warmup_epochs}.")
        if section.beta < 0:
            problems.append(f"{name}.beta must be >= 0; got {section.beta}.")
    if config.train.alpha < 0 or config.train.lam < 0:
        problems.append(f"train.alpha and train.lam must be >= 0; got {config.train.alpha} and {config.train.lam}.")
    if config.train.lam_ramp_epochs < 0:
        problems.append(f"train.lam_ramp_epochs must be >= 0; got {config.train.lam_ramp_epochs}.")
    train = config.train
    if train.attack_steps is not None and train.attack_steps < 1:
        problems.append(f"train.attack_steps must be >= 1 or none; got {train.attack_steps}.")
    if train.attack_step_size is not None and not 0 < train.attack_step_size <= config.attack.eps:
        problems.append(f"train.attack_step_size must be in (0, attack.eps] or none; got {train.attack_step_size}.")
    if train.min_selected < 1 or train.cosine_epsilon < 0:
        problems.append(
            f"train.min_selected must be >= 1 and train.cosine_epsilon >= 0; got {train.min_selected} and {train.cosine_epsilon}."
        )
    if train.refit_estimators_every < 0 or train.refit_epochs < 1:
        problems.append(
            "train.refit_estimators_every must be >= 0 and train.refit_epochs >= 1; got "
            f"{train.refit_estimators_every} and {train.refit_epochs}."
        )
    if config.estimators.units is not None and config.estimators.units < 1:
        problems.append(f"estimators.units must be >= 1; got {config.estimators.units}.")
    return problems


def _check_data(config: PipelineConfig, data_dir: str | None) -> list[str]:
    data, problems = config.data, []
    for key in ("validation_size", "test_size"):
        if not 0 < getattr(data, key) < 1:
            problems.append(f"data.{key} must be a fraction in (0, 1); got {getattr(data, key)}.")
    for key in ("take", "test_take"):
        value = getattr(data, key)
        if value is not None and value < 2:
            problems.append(f"data.{key} must be >= 2 or none; got {value}.")
    if data.num_classes is not None and data.num_classes < 2:
        problems.append(f"data.num_classes must be >= 2 or none; got {data.num_classes}.")
    if data.image_size is not None and (len(data.image_size) != 2 or min(data.image_size) < 1):
        problems.append(f"data.image_size must be height,width with both >= 1, or none; got {list(data.image_size)}.")
    return problems + _check_dataset(data.dataset, data.download, data_dir)


def _check_dataset(dataset: str, download: bool, data_dir: str | None) -> list[str]:
    """The dataset exists: a registered tensorflow_datasets name or an existing path."""
    try:
        spec = DatasetSpec.parse(dataset)
    except ValueError as error:
        return [f"data.dataset: {error}"]
    if download and spec.source is not DatasetSource.TFDS:
        return [f"data.download applies to tensorflow_datasets names only, not to {dataset!r}."]
    missing = [path for path in spec.paths(data_dir) if not path.exists()] if spec.source.reads_files else []
    if missing:
        return [f"data.dataset: unknown dataset {dataset!r}: {missing[0]} does not exist."]
    if spec.source is DatasetSource.TFDS:
        import tensorflow_datasets as tfds  # deferred: only tfds specs need it

        name = spec.location.split(":")[0]
        try:
            tfds.builder_cls(name)
        except tfds.core.registered.DatasetNotFoundError:
            return [
                f"data.dataset: unknown dataset {dataset!r}: {name!r} is neither a source prefix ({', '.join(s.value for s in DatasetSource)}) nor a tensorflow_datasets name."
            ]
    return []


def _check_tune(config: PipelineConfig) -> list[str]:
    tune, problems = config.tune, []
    if tune.max_trials < 1 or tune.epochs < 1:
        problems.append(f"tune.max_trials and tune.epochs must be >= 1; got {tune.max_trials} and {tune.epochs}.")
    if not 0 < tune.alpha_min <= tune.alpha_max:
        problems.append(
            f"tune.alpha_min must be in (0, tune.alpha_max] (log sampling); got {tune.alpha_min} and {tune.alpha_max}."
        )
    if not 0 <= tune.lam_min <= tune.lam_max:
        problems.append(f"tune.lam_min must be in [0, tune.lam_max]; got {tune.lam_min} and {tune.lam_max}.")
    if tune.tune_learning_rate and not 0 < tune.lr_min <= tune.lr_max:
        problems.append(f"tune.lr_min must be in (0, tune.lr_max]; got {tune.lr_min} and {tune.lr_max}.")
    return problems


def _check_transfer(config: PipelineConfig) -> list[str]:
    transfer, problems = config.transfer, []
    for attack in transfer.attacks:
        if attack == AttackSpec.TRANSFER or config.attack.threat_model not in attack.threat_models:
            problems.append(
                f"transfer.attacks: {attack.value!r} cannot be crafted on the surrogate under threat "
                f"model {config.attack.threat_model.value!r}."
            )
    if transfer.batch_size < 1:
        problems.append(f"transfer.batch_size must be >= 1; got {transfer.batch_size}.")
    return problems


def _check_evaluate(config: PipelineConfig) -> list[str]:
    evaluate, problems = config.evaluate, []
    if not evaluate.attacks:
        problems.append("evaluate.attacks must name at least one attack.")
    for attack in (*evaluate.attacks, evaluate.bless_attack):
        if config.attack.threat_model not in attack.threat_models:
            problems.append(
                f"evaluate.attacks: {attack.value!r} is not defined for threat model {config.attack.threat_model.value!r}."
            )
    if evaluate.bless_attack not in evaluate.attacks:
        problems.append(
            f"evaluate.bless_attack {evaluate.bless_attack.value!r} must be one of evaluate.attacks {[a.value for a in evaluate.attacks]}."
        )
    if evaluate.batch_size < 2 or evaluate.restarts < 1:
        problems.append(
            f"evaluate.batch_size must be >= 2 and evaluate.restarts >= 1; got {evaluate.batch_size} and {evaluate.restarts}."
        )
    for key in ("min_clean_accuracy", "min_robust_accuracy"):
        if not 0 <= getattr(evaluate, key) <= 1:
            problems.append(f"evaluate.{key} must be in [0, 1]; got {getattr(evaluate, key)}.")
    return problems


def _check_export(config: PipelineConfig) -> list[str]:
    name = config.export.name
    if "/" in name or name.startswith(".") or name.isdigit():
        return [f"export.name must be a plain folder name (no '/', no leading '.', not a number); got {name!r}."]
    return []


_CHECKS = (_check_attack, _check_training, _check_tune, _check_evaluate, _check_transfer, _check_export)


def _coerce_fields(instance, prefix: str) -> None:
    hints = typing.get_type_hints(type(instance))
    for field in dataclasses.fields(instance):
        if field.name in _SECTIONS and not prefix:
            continue
        key = f"{prefix}{field.name}"
        setattr(instance, field.name, coerce(getattr(instance, field.name), hints[field.name], key))


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, ParsableEnum):
        return value.value
    return value
