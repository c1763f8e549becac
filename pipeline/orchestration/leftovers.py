"""The pipeline root before a run: usable, and rid of what killed executions provably left behind."""

from __future__ import annotations

import pathlib
import shutil
import tempfile
from collections.abc import Iterable

from pipeline.orchestration.config_values import ConfigError
from pipeline.orchestration.metadata_store import ExecutionState, MetadataStore
from pipeline.orchestration.stage import Stage

WORK_DIR = ".work"


def prepare_root(root: pathlib.Path) -> None:
    """Creates ``root`` if needed; a `ConfigError` says in one line why it cannot be used."""
    try:
        root.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=root):  # writable, not just present
            pass
    except (FileExistsError, NotADirectoryError):
        blocking = next(path for path in (root, *root.parents) if path.exists() and not path.is_dir())
        raise ConfigError(f"pipeline root {root}: {blocking} is a file, not a folder.") from None
    except OSError as error:
        raise ConfigError(f"pipeline root {root} cannot be created or written: {error.strerror}.") from None


def remove_dead_work_dirs(root: pathlib.Path, store: MetadataStore, stages: Iterable[Stage]) -> list[str]:
    """Removes ``<root>/<stage>/.work/<key>`` folders that no run can resume; one line per folder.

    Call it holding the root's lock, after `MetadataStore.abandon_dead_executions`, so no
    process is using them. A work folder lets a rerun of the same cache key resume, so one is
    removed only when that resume cannot happen: an execution with its key completed (a rerun
    is a cache hit), no execution uses it, or each execution that did ran under a code version
    the stage no longer has (the key includes the code version). A folder of an interrupted
    execution of the current code is kept, and said so: the same command resumes from it.
    """
    lines = []
    for stage in stages:
        name = stage.name.value
        executions = [record for record in store.executions(stage=name) if record.cached_from is None]
        for folder in sorted((root / name / WORK_DIR).glob("*")):
            users = [record for record in executions if record.cache_key.startswith(folder.name)]
            reason = _dead_reason(users, stage.code_version())
            if reason is None:
                if users and users[-1].state is not ExecutionState.RUNNING:
                    lines.append(
                        f"[{name}] kept {folder}: execution {users[-1].id} ({users[-1].state.value}) resumes from it when the same command runs again."
                    )
                continue
            shutil.rmtree(folder, ignore_errors=True)
            lines.append(f"[{name}] removed {folder}: {reason}.")
    return lines


def _dead_reason(users, code_version: str) -> str | None:
    """Why no run can resume from a work folder used by ``users``; None when one can."""
    if not users:
        return "no execution in the metadata store uses it"
    if any(record.state is ExecutionState.RUNNING for record in users):
        return None
    complete = [record for record in users if record.state is ExecutionState.COMPLETE]
    if complete:
        return f"execution {complete[-1].id} completed with its cache key, so a rerun is a cache hit"
    if all(record.code_version != code_version for record in users):
        return f"execution {users[-1].id} ({users[-1].state.value}) ran code that has changed since, so no run can resume it"
    return None
