"""A small TFX-style orchestrator: typed stages, a SQLite metadata store, caching, resume."""

# Nothing is re-exported: import each module by its own path.
__all__: list[str] = []
