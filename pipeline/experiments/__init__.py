"""One-off experiments: scripts that measured something once (their docstring says what and
how to rerun it). They use the library and the pipeline; nothing imports them back.

Nothing is re-exported: run or import each module by its own path.
"""

__all__: list[str] = []
