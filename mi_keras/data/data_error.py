"""The error every data source raises for bad or missing data."""

from __future__ import annotations

import os


class DataError(ValueError):
    """Bad or missing data, raised before any training starts.

    The message always starts with the file or folder at fault, then says what is wrong
    with it and, where one exists, how to fix it.

    Example:
    ```python
    import mi_keras

    try:
        dataset, info = mi_keras.data.load_dataset("idx:/no/such/mnist")
    except mi_keras.data.DataError as error:
        print(error.origin, error.problem)  # the folder, and what is wrong with it
    ```

    Args:
        origin: the file, folder or dataset name the problem was found in.
        problem: what is wrong, in one or two sentences.
    """

    def __init__(self, origin: str | os.PathLike, problem: str):
        self.origin = os.fspath(origin)
        self.problem = problem
        super().__init__(f"{self.origin}: {problem}")

    def __reduce__(self):
        # Exceptions pickle their `args` (the one message); rebuild from both parts instead.
        return type(self), (self.origin, self.problem)
