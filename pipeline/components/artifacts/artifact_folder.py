"""The base of the typed views of folder artifacts, and their named files."""

from __future__ import annotations

import dataclasses
import pathlib
from typing import TypeVar

from pipeline.orchestration.artifact import Artifact

_Folder = TypeVar("_Folder", bound="ArtifactFolder")  # typing.Self needs Python 3.11; we support 3.10


class ArtifactFile:
    """One file of an `ArtifactFolder`: ``folder.best`` is ``folder.directory / "best.keras"``.

    Args:
        name: the file's name inside the folder.
    """

    def __init__(self, name: str):
        self.name = name

    def __get__(self, folder: ArtifactFolder | None, owner: type | None = None):
        return self if folder is None else folder.directory / self.name


@dataclasses.dataclass(frozen=True)
class ArtifactFolder:
    """A stage output folder; subclasses name its files with `ArtifactFile` attributes.

    Args:
        directory: the folder.
    """

    directory: pathlib.Path

    @classmethod
    def of(cls: type[_Folder], artifact: Artifact) -> _Folder:
        """The view of a recorded artifact's folder."""
        return cls(artifact.path)
