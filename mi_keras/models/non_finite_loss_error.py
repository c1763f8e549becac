"""The error a training model raises when its loss or gradients stop being finite."""

from __future__ import annotations


class NonFiniteLossError(FloatingPointError):
    """Training stopped at a step whose loss or gradients were NaN or infinite.

    The step's update was not applied, so the model keeps the weights (and optimizer state)
    of the last good step: it can be saved, exported or inspected as it was before the fall.

    Attributes:
        step: the 1-based optimizer step that produced the non-finite value (None if unknown).
        value: the loss value as a string (``"nan"``, ``"inf"``; a finite loss means a
            gradient was the non-finite one), None if unknown.
    """

    def __init__(self, message: str, step: int | None = None, value: str | None = None):
        super().__init__(message)
        self.step = step
        self.value = value
