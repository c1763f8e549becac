"""The mi-keras pipeline: data -> standard AT -> MI estimators -> MIAT -> evaluation -> export.

Run it with ``python pipeline/run.py`` (see ``pipeline/run.py --help``).
"""

# Nothing is re-exported: import each module by its own path.
__all__: list[str] = []
