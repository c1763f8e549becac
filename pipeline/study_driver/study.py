"""A study: which datasets, methods and seeds to compare, and how to evaluate every unit."""

from __future__ import annotations

import dataclasses
import pathlib

from mi_keras.enums import ParsableEnum
from pipeline.orchestration.stage import StageName
from pipeline.recipes import Recipe
from pipeline.settings import ConfigError, load_defined_object

STUDIES_DIR = pathlib.Path(__file__).resolve().parents[1] / "studies"
REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]


class Method(ParsableEnum):
    """A training method of a study; each is a pipeline stage with config overrides.

    Every method trains with the dataset's data, model, attack, schedule, batch, epochs and
    model-selection rule; only its overrides differ (and, for a recipe method, the named
    recipe's, `pipeline.recipes`). The name says what runs.
    """

    STANDARD_AT = "standard_at"  # Madry et al.: the pipeline's pretrain stage
    TRADES = "trades"  # Zhang et al., beta 6
    MART = "mart"  # Wang et al., beta 6
    MIAT_LAMBDA0 = "miat_lambda0"  # the paper's loss with lambda 0 (the released code's lambda only)
    MIAT_LAMBDA01 = "miat_lambda01"  # the paper's lambda 0.1, with the study's lambda remedy
    NAMID_T = "namid_t"  # TRADES + the MI loss, lambda 0.1 with the remedy
    NAMID_M = "namid_m"  # MART + the MI loss, lambda 0.1 with the remedy
    MIAT_OFFICIAL = "miat_official"  # the official recipe, everything the released code does
    MIAT_PAPER = "miat_paper"  # the paper recipe, its text
    # One stabiliser each, on the paper's loss at lambda 0 (docs/stability.md):
    MIAT_MIN_SELECTED = "miat_min_selected"  # the MI loss counts from 2 selected samples
    MIAT_SHARE_WEIGHTED = "miat_share_weighted"  # cosine terms weighted by the selected share
    MIAT_COSINE_EPSILON = "miat_cosine_epsilon"  # cosine gradient bounded (epsilon 1)
    MIAT_STANDARDIZED_LOGITS = "miat_standardized_logits"  # estimators read standardised logits
    MIAT_FROM_AT = "miat_from_at"  # stage 2 starts from the standard-AT weights
    MIAT_REFIT = "miat_refit"  # estimators refitted to the classifier every 3 epochs

    @property
    def display_name(self) -> str:
        return _DISPLAY_NAMES[self]

    @property
    def stage(self) -> StageName:
        """The pipeline stage that trains this method's model."""
        return StageName.PRETRAIN if self in _BASELINES else StageName.TRAIN

    @property
    def recipe(self) -> Recipe | None:
        """The named recipe this method applies before its overrides, if any."""
        return {Method.MIAT_OFFICIAL: Recipe.OFFICIAL, Method.MIAT_PAPER: Recipe.PAPER}.get(self)

    @property
    def baseline(self) -> Method | None:
        """The method a report compares this one with (same base loss, no MI term)."""
        if self in _BASELINES:
            return None
        return {Method.NAMID_T: Method.TRADES, Method.NAMID_M: Method.MART}.get(self, Method.STANDARD_AT)

    def overrides(self, lambda_remedy: tuple[str, ...]) -> list[str]:
        """The ``--set`` assignments that turn a dataset's config into this method (after its recipe's)."""
        paper_mi_loss = ["train.lam=0.1", *lambda_remedy]
        lambda0 = ["train.base_loss=ce", "train.lam=0"]
        return {
            Method.STANDARD_AT: ["pretrain.base_loss=ce"],
            Method.TRADES: ["pretrain.base_loss=trades"],
            Method.MART: ["pretrain.base_loss=mart"],
            Method.MIAT_LAMBDA0: lambda0,
            Method.MIAT_LAMBDA01: ["train.base_loss=ce", *paper_mi_loss],
            Method.NAMID_T: ["train.base_loss=trades", *paper_mi_loss],
            Method.NAMID_M: ["train.base_loss=mart", *paper_mi_loss],
            Method.MIAT_OFFICIAL: ["train.base_loss=ce"],
            Method.MIAT_PAPER: ["train.base_loss=ce"],
            Method.MIAT_MIN_SELECTED: [*lambda0, "train.min_selected=2"],
            Method.MIAT_SHARE_WEIGHTED: [*lambda0, "train.weight_by_selected_share=true"],
            Method.MIAT_COSINE_EPSILON: [*lambda0, "train.cosine_epsilon=1.0"],
            Method.MIAT_STANDARDIZED_LOGITS: [*lambda0, "estimators.logit_normalization=standardize"],
            Method.MIAT_FROM_AT: [*lambda0, "train.init_from_pretrain=true"],
            Method.MIAT_REFIT: [*lambda0, "train.refit_estimators_every=3"],
        }[self]


_BASELINES = (Method.STANDARD_AT, Method.TRADES, Method.MART)
_DISPLAY_NAMES = {
    Method.STANDARD_AT: "Standard AT",
    Method.TRADES: "TRADES",
    Method.MART: "MART",
    Method.MIAT_LAMBDA0: "MIAT (lambda 0)",
    Method.MIAT_LAMBDA01: "MIAT (lambda 0.1, remedied)",
    Method.NAMID_T: "NAMID_T",
    Method.NAMID_M: "NAMID_M",
    Method.MIAT_OFFICIAL: "MIAT (official recipe)",
    Method.MIAT_PAPER: "MIAT (paper recipe)",
    Method.MIAT_MIN_SELECTED: "MIAT + min 2 selected",
    Method.MIAT_SHARE_WEIGHTED: "MIAT + share-weighted cosines",
    Method.MIAT_COSINE_EPSILON: "MIAT + cosine epsilon 1",
    Method.MIAT_STANDARDIZED_LOGITS: "MIAT + standardised logits",
    Method.MIAT_FROM_AT: "MIAT from the AT weights",
    Method.MIAT_REFIT: "MIAT + estimators refitted every 3 epochs",
}


@dataclasses.dataclass(frozen=True)
class StudyDataset:
    """One dataset of a study: a pipeline config and the overrides that size it.

    Attributes:
        name: the key of its results (``results/<study>/<name>/...``).
        config: a config name of ``pipeline/configs/``.
        overrides: ``--set`` assignments applied to it (sizes, epochs, model).
        data_dir: the ``--data-dir`` of its runs; a relative path starts at the repository.
        method_overrides: ``(method, assignments)`` pairs applied last, to that method only
            (a recipe's scaling, which the study's docstring must state).
    """

    name: str
    config: str
    overrides: tuple[str, ...] = ()
    data_dir: str | None = None
    method_overrides: tuple[tuple[Method, tuple[str, ...]], ...] = ()

    def overrides_for(self, method: Method) -> tuple[str, ...]:
        return dict(self.method_overrides).get(method, ())

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
        reused: ``(method, study)`` pairs: that method's units are another study's JSONs
            (same datasets, seeds and evaluation), read and never rerun here.
        report: where ``--report`` writes, relative to the repository.
    """

    name: str
    datasets: tuple[StudyDataset, ...]
    methods: tuple[Method, ...]
    seeds: tuple[int, ...] = (0, 1, 2)
    lambda_remedy: tuple[str, ...] = ()
    evaluation: StudyEvaluation = StudyEvaluation()
    reused: tuple[tuple[Method, str], ...] = ()
    report: str = "docs/results.md"

    def __post_init__(self):
        names = [dataset.name for dataset in self.datasets]
        if not names or len(set(names)) != len(names):
            raise ConfigError(f"Study {self.name!r}: dataset names must be unique and non-empty; got {names}.")
        if not self.methods or not self.seeds:
            raise ConfigError(f"Study {self.name!r} needs at least one method and one seed.")
        object.__setattr__(self, "methods", tuple(Method.parse(method, "method") for method in self.methods))
        reused = tuple((Method.parse(method, "method"), study) for method, study in self.reused)
        if any(method not in self.methods for method, _ in reused):
            raise ConfigError(f"Study {self.name!r}: a reused method must be one of its methods; got {self.reused}.")
        object.__setattr__(self, "reused", reused)

    def results_study(self, method: Method) -> str:
        """The study whose results folder holds ``method``'s units (another one's when reused)."""
        return dict(self.reused).get(method, self.name)

    def dataset(self, name: str) -> StudyDataset:
        for dataset in self.datasets:
            if dataset.name == name:
                return dataset
        raise ConfigError(f"Study {self.name!r} has no dataset {name!r}; it has {[d.name for d in self.datasets]}.")


def load_study(name_or_path: str) -> Study:
    """The ``STUDY`` of ``pipeline/studies/<name>.py``, or of a Python file given by path."""
    return load_defined_object(name_or_path, STUDIES_DIR, "STUDY", Study, "--study")
