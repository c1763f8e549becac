# Nothing is re-exported: import each module by its own path.
__all__: list[str] = []
