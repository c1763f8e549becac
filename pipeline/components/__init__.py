"""Building blocks shared by the stages: data access, builders, resumable training, summaries."""

# Nothing is re-exported: import each module by its own path.
__all__: list[str] = []
