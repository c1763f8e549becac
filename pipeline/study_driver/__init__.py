"""The study driver: trains and evaluates (dataset, method, seed) units, one JSON each.

`pipeline/study.py` is its command line; studies are Python files in `pipeline/studies/`.
"""

# Nothing is re-exported: import each module by its own path.
__all__: list[str] = []
