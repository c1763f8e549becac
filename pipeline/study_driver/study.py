"""A study: which datasets, methods and seeds to compare, and how to evaluate every unit."""

from __future__ import annotations

import dataclasses
import pathlib

from mi_keras.enums import ParsableEnum
from pipeline.orchestration.stage import StageName
from pipeline.settings import ConfigError, load_defined_object

STUDIES_DIR = pathlib.Path(__file__).resolve().parents[1] / "studies"
REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]


class Method(ParsableEnum):
    """A training method of a study; each is a pipeline stage with config overrides.

    Every method trains with the dataset's data, model, attack, schedule, batch, epochs and
    model-selection rule; only the overrides below differ.
    """

    STANDARD_AT = "standard_at"  # Madry et al.: the pipeline's pretrain stage
    TRADES = "trades"  # Zhang et al., beta 6
    MART = "mart"  # Wang et al., beta 6
    MIAT_RELEASED = "miat_released"  # the official code's loss: lambda 0
    MIAT = "miat"  # the paper's lambda 0.1, with the study's lambda remedy
    NAMID_T = "namid_t"  # TRADES + the MI loss of MIAT
    NAMID_M = "namid_m"  # MART + the MI loss of MIAT

    @property
    def display_name(self) -> str:
        return _DISPLAY_NAMES[self]

    @property
    def stage(self) -> StageName:
        """The pipeline stage that trains this method's model."""
        return StageName.PRETRAIN if self in _BASELINES else StageName.TRAIN

    def overrides(self, lambda_remedy: tuple[str, ...]) -> list[str]:
        """The ``--set`` assignments that turn a dataset's config into this method."""
        paper_mi_loss = ["train.lam=0.1", *lambda_remedy]
        return {
            Method.STANDARD_AT: ["pretrain.base_loss=ce"],
            Method.TRADES: ["pretrain.base_loss=trades"],
            Method.MART: ["pretrain.base_loss=mart"],
            Method.MIAT_RELEASED: ["train.base_loss=ce", "train.lam=0"],
            Method.MIAT: ["train.base_loss=ce", *paper_mi_loss],
            Method.NAMID_T: ["train.base_loss=trades", *paper_mi_loss],
            Method.NAMID_M: ["train.base_loss=mart", *paper_mi_loss],
        }[self]


_BASELINES = (Method.STANDARD_AT, Method.TRADES, Method.MART)
_DISPLAY_NAMES = {
    Method.STANDARD_AT: "Standard AT",
    Method.TRADES: "TRADES",
    Method.MART: "MART",
    Method.MIAT_RELEASED: "MIAT (lambda 0, released)",
    Method.MIAT: "MIAT (lambda 0.1, remedied)",
    Method.NAMID_T: "NAMID_T",
    Method.NAMID_M: "NAMID_M",
}

# The paired comparisons a report makes: (method, its baseline).
COMPARISONS = (
    (Method.MIAT, Method.STANDARD_AT),
    (Method.MIAT_RELEASED, Method.STANDARD_AT),
    (Method.NAMID_T, Method.TRADES),
    (Method.NAMID_M, Method.MART),
)


@dataclasses.dataclass(frozen=True)
class StudyDataset:
    """One dataset of a study: a pipeline config and the overrides that size it.

    Attributes:
        name: the key of its results (``results/<study>/<name>/...``).
        config: a config name of ``pipeline/configs/``.
        overrides: ``--set`` assignments applied to it (sizes, epochs, model).
        data_dir: the ``--data-dir`` of its runs; a relative path starts at the repository.
    """

    name: str
    config: str
    overrides: tuple[str, ...] = ()
    data_dir: str | None = None

    def resolved_data_dir(self) -> str | None:
        if self.data_dir is None:
            return None
        return str((REPO_ROOT / self.data_dir).resolve())


@dataclasses.dataclass(frozen=True)
class StudyEvaluation:
    """How every unit is evaluated, on test subsets fixed once and shared by every unit.

    Attributes:
        pgd_examples: PGD-40 (step eps / 4, uniform random start) subset; None: the test set.
        autoattack_examples: AutoAttack "standard" subset (drawn inside the PGD subset).
        autoattack_seeds: the seeds whose units also get AutoAttack (it dominates the cost).
        masking_examples: examples of the gradient-masking checks' own attacks.
        masking_square_queries: the masking checks' Square budget.
        mi_probe_examples: MI-probe subset (drawn inside the PGD subset).
        batch_size: examples per attack call.
        subset_seed: draws the subsets (class-balanced); never a unit's seed.
    """

    pgd_examples: int | None = 2000
    autoattack_examples: int = 500
    autoattack_seeds: tuple[int, ...] = (0,)
    masking_examples: int = 200
    masking_square_queries: int = 1000
    mi_probe_examples: int = 1000
    batch_size: int = 250
    subset_seed: int = 0


@dataclasses.dataclass(frozen=True)
class Study:
    """Datasets x methods x seeds, each unit trained by the pipeline and evaluated alike.

    Attributes:
        name: the study's name (its results folder).
        datasets: the `StudyDataset` list.
        methods: the `Method` list, in the order units run (within a seed and dataset).
        seeds: the seeds; each seeds weights, data order and attack starts, never the splits.
        lambda_remedy: ``--set`` assignments that make the paper's lambda train
            (docs/lambda.md); applied to every method with the paper's MI loss.
        evaluation: the `StudyEvaluation`.
    """

    name: str
    datasets: tuple[StudyDataset, ...]
    methods: tuple[Method, ...]
    seeds: tuple[int, ...] = (0, 1, 2)
    lambda_remedy: tuple[str, ...] = ()
    evaluation: StudyEvaluation = StudyEvaluation()

    def __post_init__(self):
        names = [dataset.name for dataset in self.datasets]
        if not names or len(set(names)) != len(names):
            raise ConfigError(f"Study {self.name!r}: dataset names must be unique and non-empty; got {names}.")
        if not self.methods or not self.seeds:
            raise ConfigError(f"Study {self.name!r} needs at least one method and one seed.")
        object.__setattr__(self, "methods", tuple(Method.parse(method, "method") for method in self.methods))

    def dataset(self, name: str) -> StudyDataset:
        for dataset in self.datasets:
            if dataset.name == name:
                return dataset
        raise ConfigError(f"Study {self.name!r} has no dataset {name!r}; it has {[d.name for d in self.datasets]}.")


def load_study(name_or_path: str) -> Study:
    """The ``STUDY`` of ``pipeline/studies/<name>.py``, or of a Python file given by path."""
    return load_defined_object(name_or_path, STUDIES_DIR, "STUDY", Study, "--study")
