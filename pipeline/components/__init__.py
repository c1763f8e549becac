"""Building blocks shared by the stages: data access, builders, resumable training, summaries."""
