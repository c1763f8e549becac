"""Pipeline configs: each module defines ``CONFIG`` and its docstring gives the command and the
expected result. ``python pipeline/run.py --config NAME`` runs one."""

# Nothing is re-exported: import each module by its own path.
__all__: list[str] = []
