"""A small TFX-style orchestrator: typed stages, a SQLite metadata store, caching, resume."""
