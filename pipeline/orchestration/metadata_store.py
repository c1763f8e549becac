"""The metadata store: runs, executions, artifacts, their lineage and metrics, in SQLite.

TFX keeps this in ML Metadata; the standard library's ``sqlite3`` is enough here. Every
write is one transaction, so a process killed at any instant leaves a consistent store: an
execution is ``complete`` only once its artifacts are in place and recorded.

Artifact paths under the pipeline root are stored relative to it, so a root can be moved.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import pathlib
import sqlite3
import time
from typing import Any

from mi_keras.enums import ParsableEnum
from pipeline.orchestration.artifact import Artifact, ArtifactType

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    config_name TEXT NOT NULL,
    command TEXT NOT NULL,
    state TEXT NOT NULL,
    pid INTEGER,
    started_at REAL NOT NULL,
    finished_at REAL
);
CREATE TABLE IF NOT EXISTS executions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id INTEGER NOT NULL REFERENCES runs(id),
    stage TEXT NOT NULL,
    state TEXT NOT NULL,
    cache_key TEXT NOT NULL,
    code_version TEXT NOT NULL,
    config_json TEXT NOT NULL,
    properties_json TEXT NOT NULL,
    pid INTEGER,
    cached_from INTEGER REFERENCES executions(id),
    error TEXT,
    started_at REAL NOT NULL,
    finished_at REAL
);
CREATE INDEX IF NOT EXISTS executions_by_key ON executions (stage, cache_key, state);
CREATE TABLE IF NOT EXISTS artifacts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    type TEXT NOT NULL,
    uri TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    properties_json TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS events (
    execution_id INTEGER NOT NULL REFERENCES executions(id),
    artifact_id INTEGER NOT NULL REFERENCES artifacts(id),
    kind TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS metrics (
    execution_id INTEGER NOT NULL REFERENCES executions(id),
    name TEXT NOT NULL,
    value REAL NOT NULL
);
"""


class ExecutionState(ParsableEnum):
    """The life cycle of a stage execution."""

    RUNNING = "running"
    COMPLETE = "complete"
    CACHED = "cached"  # skipped: a complete execution with the same cache key was reused
    FAILED = "failed"
    ABANDONED = "abandoned"  # its process died (kill -9, power loss) while it was running


class EventKind(ParsableEnum):
    INPUT = "input"
    OUTPUT = "output"


@dataclasses.dataclass
class ExecutionRecord:
    """One row of the ``executions`` table."""

    id: int
    run_id: int
    stage: str
    state: ExecutionState
    cache_key: str
    code_version: str
    config: dict[str, Any]
    properties: dict[str, Any]
    pid: int | None
    cached_from: int | None
    error: str | None
    started_at: float
    finished_at: float | None


class MetadataStore:
    """Records what each stage execution read, wrote and measured.

    Example:
    ```python
    store = MetadataStore("pipeline_root/metadata.sqlite", root="pipeline_root")
    run_id = store.start_run("quickstart", "python pipeline/run.py")
    execution_id = store.start_execution(run_id, "train", key, version, config, {}, inputs)
    store.complete_execution(execution_id, outputs)
    ```

    Args:
        path: the SQLite file (created with its tables when missing).
        root: the pipeline root; artifact paths below it are stored relative to it.
    """

    def __init__(self, path: str | os.PathLike, root: str | os.PathLike):
        self.path = pathlib.Path(path)
        self.root = pathlib.Path(root).resolve()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._connection = sqlite3.connect(self.path, timeout=30)
        self._connection.row_factory = sqlite3.Row
        with self._transaction() as cursor:
            cursor.executescript(_SCHEMA)

    def close(self) -> None:
        self._connection.close()

    @contextlib.contextmanager
    def _transaction(self):
        with self._connection:
            yield self._connection.cursor()

    # Runs.
    def start_run(self, config_name: str, command: str) -> int:
        with self._transaction() as cursor:
            cursor.execute(
                "INSERT INTO runs (config_name, command, state, pid, started_at) VALUES (?, ?, ?, ?, ?)",
                (config_name, command, ExecutionState.RUNNING.value, os.getpid(), time.time()),
            )
            return cursor.lastrowid

    def run_state(self, run_id: int) -> ExecutionState:
        row = self._connection.execute("SELECT state FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            raise KeyError(f"No run with id {run_id} in {self.path}.")
        return ExecutionState(row["state"])

    def finish_run(self, run_id: int, state: ExecutionState) -> None:
        with self._transaction() as cursor:
            cursor.execute(
                "UPDATE runs SET state = ?, finished_at = ? WHERE id = ?", (state.value, time.time(), run_id)
            )

    # Executions.
    def start_execution(
        self,
        run_id: int,
        stage: str,
        cache_key: str,
        code_version: str,
        config: dict[str, Any],
        properties: dict[str, Any],
        inputs: list[Artifact],
    ) -> int:
        with self._transaction() as cursor:
            cursor.execute(
                "INSERT INTO executions (run_id, stage, state, cache_key, code_version, config_json,"
                " properties_json, pid, started_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    run_id,
                    stage,
                    ExecutionState.RUNNING.value,
                    cache_key,
                    code_version,
                    _dump(config),
                    _dump(properties),
                    os.getpid(),
                    time.time(),
                ),
            )
            execution_id = cursor.lastrowid
            self._link(cursor, execution_id, inputs, EventKind.INPUT)
            return execution_id

    def complete_execution(
        self, execution_id: int, outputs: list[Artifact], properties: dict[str, Any]
    ) -> list[Artifact]:
        """Records the outputs and marks the execution complete, in one transaction."""
        with self._transaction() as cursor:
            recorded = [self._insert_artifact(cursor, artifact) for artifact in outputs]
            self._link(cursor, execution_id, recorded, EventKind.OUTPUT)
            cursor.execute(
                "UPDATE executions SET state = ?, finished_at = ?, properties_json = ? WHERE id = ?",
                (ExecutionState.COMPLETE.value, time.time(), _dump(properties), execution_id),
            )
        return recorded

    def fail_execution(self, execution_id: int, error: str) -> None:
        with self._transaction() as cursor:
            cursor.execute(
                "UPDATE executions SET state = ?, finished_at = ?, error = ? WHERE id = ?",
                (ExecutionState.FAILED.value, time.time(), error, execution_id),
            )

    def record_cached(
        self, run_id: int, source: ExecutionRecord, inputs: list[Artifact], outputs: list[Artifact]
    ) -> int:
        """Records that ``source``'s outputs were reused by this run (an execution of its own)."""
        with self._transaction() as cursor:
            now = time.time()
            cursor.execute(
                "INSERT INTO executions (run_id, stage, state, cache_key, code_version, config_json,"
                " properties_json, pid, cached_from, started_at, finished_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    run_id,
                    source.stage,
                    ExecutionState.CACHED.value,
                    source.cache_key,
                    source.code_version,
                    _dump(source.config),
                    _dump(source.properties),
                    os.getpid(),
                    source.id,
                    now,
                    now,
                ),
            )
            execution_id = cursor.lastrowid
            self._link(cursor, execution_id, inputs, EventKind.INPUT)
            self._link(cursor, execution_id, outputs, EventKind.OUTPUT)
            return execution_id

    def find_cached(self, stage: str, cache_key: str) -> tuple[ExecutionRecord, list[Artifact]] | None:
        """The newest complete execution with this key whose outputs all still exist."""
        rows = self._connection.execute(
            "SELECT * FROM executions WHERE stage = ? AND cache_key = ? AND state = ? ORDER BY id DESC",
            (stage, cache_key, ExecutionState.COMPLETE.value),
        ).fetchall()
        for row in rows:
            outputs = self.artifacts(row["id"], EventKind.OUTPUT)
            if all(artifact.exists() for artifact in outputs):
                return _record(row), outputs
        return None

    def abandon_dead_executions(self) -> list[ExecutionRecord]:
        """Marks ``running`` runs and executions whose process is gone as ``abandoned``.

        Returns the abandoned executions.
        """
        running = ExecutionState.RUNNING.value
        rows = self._connection.execute("SELECT * FROM executions WHERE state = ?", (running,)).fetchall()
        dead = [_record(row) for row in rows if not process_alive(row["pid"])]
        runs = self._connection.execute("SELECT id, pid FROM runs WHERE state = ?", (running,)).fetchall()
        dead_runs = [row["id"] for row in runs if not process_alive(row["pid"])]
        now = time.time()
        with self._transaction() as cursor:
            for record in dead:
                cursor.execute(
                    "UPDATE executions SET state = ?, finished_at = ?, error = ? WHERE id = ?",
                    (ExecutionState.ABANDONED.value, now, f"process {record.pid} died while the stage ran", record.id),
                )
            cursor.executemany(
                "UPDATE runs SET state = ?, finished_at = ? WHERE id = ?",
                [(ExecutionState.ABANDONED.value, now, run_id) for run_id in dead_runs],
            )
        return dead

    def execution(self, execution_id: int) -> ExecutionRecord:
        row = self._connection.execute("SELECT * FROM executions WHERE id = ?", (execution_id,)).fetchone()
        if row is None:
            raise KeyError(f"No execution with id {execution_id} in {self.path}.")
        return _record(row)

    def executions(self, run_id: int | None = None, stage: str | None = None) -> list[ExecutionRecord]:
        query, arguments = "SELECT * FROM executions WHERE 1 = 1", []
        if run_id is not None:
            query, arguments = query + " AND run_id = ?", [*arguments, run_id]
        if stage is not None:
            query, arguments = query + " AND stage = ?", [*arguments, stage]
        return [_record(row) for row in self._connection.execute(query + " ORDER BY id", arguments)]

    def latest_run_id(self) -> int | None:
        row = self._connection.execute("SELECT MAX(id) FROM runs").fetchone()
        return row[0]

    # Artifacts and metrics.
    def artifacts(self, execution_id: int, kind: EventKind) -> list[Artifact]:
        rows = self._connection.execute(
            "SELECT artifacts.* FROM artifacts JOIN events ON events.artifact_id = artifacts.id"
            " WHERE events.execution_id = ? AND events.kind = ? ORDER BY artifacts.id",
            (execution_id, kind.value),
        ).fetchall()
        return [
            Artifact(
                name=row["name"],
                type=ArtifactType(row["type"]),
                uri=str(self.root / row["uri"]),  # an absolute stored uri stays absolute
                fingerprint=row["fingerprint"],
                properties=json.loads(row["properties_json"]),
                id=row["id"],
            )
            for row in rows
        ]

    def log_metrics(self, execution_id: int, metrics: dict[str, float]) -> None:
        with self._transaction() as cursor:
            cursor.executemany(
                "INSERT INTO metrics (execution_id, name, value) VALUES (?, ?, ?)",
                [(execution_id, name, float(value)) for name, value in metrics.items()],
            )

    def metrics(self, execution_id: int) -> dict[str, float]:
        rows = self._connection.execute(
            "SELECT name, value FROM metrics WHERE execution_id = ? ORDER BY rowid", (execution_id,)
        )
        return {row["name"]: row["value"] for row in rows}

    def _insert_artifact(self, cursor, artifact: Artifact) -> Artifact:
        path = pathlib.Path(artifact.uri).resolve()
        stored = path.relative_to(self.root).as_posix() if path.is_relative_to(self.root) else str(path)
        cursor.execute(
            "INSERT INTO artifacts (name, type, uri, fingerprint, properties_json, created_at) VALUES (?, ?, ?, ?, ?, ?)",
            (artifact.name, artifact.type.value, stored, artifact.fingerprint, _dump(artifact.properties), time.time()),
        )
        return dataclasses.replace(artifact, uri=str(path), id=cursor.lastrowid)

    @staticmethod
    def _link(cursor, execution_id: int, artifacts: list[Artifact], kind: EventKind) -> None:
        cursor.executemany(
            "INSERT INTO events (execution_id, artifact_id, kind) VALUES (?, ?, ?)",
            [(execution_id, artifact.id, kind.value) for artifact in artifacts],
        )


def _record(row: sqlite3.Row) -> ExecutionRecord:
    return ExecutionRecord(
        id=row["id"],
        run_id=row["run_id"],
        stage=row["stage"],
        state=ExecutionState(row["state"]),
        cache_key=row["cache_key"],
        code_version=row["code_version"],
        config=json.loads(row["config_json"]),
        properties=json.loads(row["properties_json"]),
        pid=row["pid"],
        cached_from=row["cached_from"],
        error=row["error"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
    )


def process_alive(pid: int | None) -> bool:
    """Whether process ``pid`` exists (on this machine)."""
    if pid is None:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by another user
        return True
    return True


def _dump(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)
