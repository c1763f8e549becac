"""The study driver: trains and evaluates (dataset, method, seed) units, one JSON each.

`pipeline/study.py` is its command line; studies are Python files in `pipeline/studies/`.
"""
