"""The stage contract: typed inputs (upstream artifacts) in, artifacts out."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import importlib
import inspect
import pathlib
from typing import TYPE_CHECKING, Any

import tensorflow as tf

import mi_keras
from pipeline.orchestration.artifact import Artifact, ArtifactType
from pipeline.orchestration.config_view import ConfigView
from pipeline.orchestration.metadata_store import MetadataStore

if TYPE_CHECKING:  # the engine runs any settings schema; this one is the pipeline's
    from pipeline.settings import PipelineConfig

_PIPELINE_DIR = pathlib.Path(__file__).resolve().parents[1]


# Every stage's name -> (its place in the execution order, its class); filled by `register_stage`.
_REGISTRY: dict[str, tuple[int, type[Stage]]] = {}
# The package whose modules register the pipeline's stages; imported on first use of the names.
STAGES_PACKAGE = "pipeline.stages"


class _RegisteredNames(type):
    """``StageName.TRAIN`` and ``for name in StageName``: the registered names, in order."""

    def __getattr__(cls, attribute: str) -> StageName:
        if attribute.isupper():
            for name in cls.registered():
                if name.upper() == attribute:
                    return name
        raise AttributeError(f"No stage is registered as {attribute.lower()!r} (see register_stage).")

    def __iter__(cls):
        return iter(cls.registered())


class StageName(str, metaclass=_RegisteredNames):
    """A registered stage's name, a str: ``StageName.TRAIN == "train"``.

    The names come from `register_stage` in each stage's module, not from a list here, so
    adding a stage touches its own module only (CONTRIBUTING.md, "A new stage").
    """

    @property
    def value(self) -> str:
        return str(self)

    @classmethod
    def registered(cls) -> list[StageName]:
        """Every registered name, in execution order."""
        importlib.import_module(STAGES_PACKAGE)
        return [cls(name) for name, _ in sorted(_REGISTRY.items(), key=lambda item: item[1][0])]

    @classmethod
    def parse(cls, value: str, argument: str | None = None) -> StageName:
        names = cls.registered()
        if isinstance(value, str) and value.lower() in names:
            return cls(value.lower())
        accepted = ", ".join(repr(name.value) for name in names)
        raise ValueError(f"Unknown {argument or cls.__name__} {value!r}; expected one of {accepted}.")


def register_stage(name: str, order: int):
    """Class decorator declaring a stage: its name and its place in the execution order.

    A stage's upstream stages must come earlier in the order (the runner visits stages in
    it). Its config sections and upstream stages are its own methods (`Stage`).

    Example:
    ```python
    @register_stage("ingest", order=10)
    class Ingest(Stage):
        def config_sections(self, config):
            return ("data",)
    ```
    """

    def register(stage_class: type[Stage]) -> type[Stage]:
        taken = {place: other for other, (place, _) in _REGISTRY.items() if other != name}
        if order in taken:
            raise ValueError(f"Stage {name!r}: order {order} is already stage {taken[order]!r}'s; pick a free one.")
        stage_class.name = StageName(name)
        _REGISTRY[name] = (order, stage_class)
        return stage_class

    return register


def all_stages() -> list[Stage]:
    """One instance of every registered stage, in execution order (the runner's DAG order)."""
    return [_REGISTRY[name][1]() for name in StageName.registered()]


Inputs = dict[StageName, dict[str, Artifact]]


@dataclasses.dataclass
class StageContext:
    """What a running stage may use.

    Attributes:
        config: the validated pipeline config, restricted to the stage's declared sections.
        execution_id: this execution's id in the metadata store.
        output_dir: a private staging folder; the runner renames it to
            ``<root>/<stage>/<execution_id>`` once the stage returns.
        work_dir: a folder keyed by the cache key that survives a crash (training backups,
            tuner trials), so a rerun with the same key resumes; removed on success.
        tensorboard_dir: ``<root>/tensorboard/<run>``, the run named by `Stage.tensorboard_run`.
        data_dir: the ``--data-dir`` flag (None when not given).
        strategy: the `tf.distribute.Strategy` to build and train models under.
        store: the metadata store.
        verbose: Keras progress-bar verbosity (1: bars, 0: silent).
    """

    config: ConfigView
    execution_id: int
    output_dir: pathlib.Path
    work_dir: pathlib.Path
    tensorboard_dir: pathlib.Path
    data_dir: str | None
    strategy: tf.distribute.Strategy
    store: MetadataStore
    verbose: int = 1

    def log_metrics(self, metrics: dict[str, float]) -> None:
        self.store.log_metrics(self.execution_id, metrics)

    def artifact(self, name: str, artifact_type: ArtifactType, relative_path: str, **properties: Any) -> Artifact:
        """An output at ``output_dir / relative_path`` (the runner fingerprints it)."""
        return Artifact(name=name, type=artifact_type, uri=str(self.output_dir / relative_path), properties=properties)


class Stage:
    """Base class of a pipeline stage.

    Subclasses are declared with `register_stage` (which sets `name`), declare their upstream
    stages and the config sections their result depends on (the cache key covers exactly
    those, and `run` may read only those), and implement `run`.
    """

    name: StageName

    def upstream(self, config: PipelineConfig) -> tuple[StageName, ...]:
        """The stages whose outputs `run` reads."""
        return ()

    def config_sections(self, config: PipelineConfig) -> tuple[str, ...]:
        """The config sections, top-level keys and ``section.field`` keys `run` reads.

        The cache key covers exactly these, and `run` gets a `ConfigView` that refuses any
        other key, so a stage cannot depend on a setting its cache key misses.
        """
        return ()

    def tensorboard_run(self, config: PipelineConfig) -> str:
        """The TensorBoard run this stage logs to, named by its role (``standard_at``, ``miat``)."""
        return self.name.value

    def enabled_by_default(self, config: PipelineConfig) -> bool:
        """Whether a run without ``--stages`` includes this stage."""
        return True

    def external_fingerprint(self, config: PipelineConfig, data_dir: str | None) -> str:
        """A fingerprint of outside inputs (source data files); part of the cache key."""
        return ""

    def remove_leftovers(self, config: PipelineConfig) -> list[str]:
        """Removes what killed executions of this stage provably left outside the pipeline
        root (their process is gone); returns one line per removal. Called at a run's start."""
        return []

    def config_view(self, config: PipelineConfig) -> ConfigView:
        """The config as `run` sees it: only the declared sections (see `ConfigView`)."""
        return ConfigView(config, self.name.value, self.config_sections(config))

    def cache_config(self, config: PipelineConfig) -> dict[str, Any]:
        """The declared config values; with ``deterministic`` when set (deterministic ops give
        other numbers for the same seed; default runs keep their keys)."""
        return self.config_view(config).to_dict()

    def run(self, context: StageContext, inputs: Inputs) -> list[Artifact]:
        raise NotImplementedError(f"{type(self).__name__} must implement `run`.")

    def code_version(self) -> str:
        """SHA-256 of this stage's module, the shared pipeline components and mi_keras."""
        digest = hashlib.sha256(pathlib.Path(inspect.getsourcefile(type(self))).read_bytes())
        digest.update(_shared_sources_digest().encode())
        return digest.hexdigest()


@functools.cache
def _shared_sources_digest() -> str:
    digest = hashlib.sha256()
    library = pathlib.Path(mi_keras.__file__).parent
    for root in (library, _PIPELINE_DIR / "components"):
        for path in sorted(root.rglob("*.py")):
            digest.update(path.relative_to(root.parent).as_posix().encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()
