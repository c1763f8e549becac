"""Pipeline configs: each module defines ``CONFIG`` and its docstring gives the command and the
expected result. ``python pipeline/run.py --config NAME`` runs one."""
