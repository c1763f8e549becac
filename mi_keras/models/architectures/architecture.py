"""The architecture registry: a name, as a config writes it, to a classifier builder."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any

import keras

from mi_keras.enums import ParsableEnum
from mi_keras.models.architectures.preact_resnet18 import preact_resnet18
from mi_keras.models.architectures.resnet18 import resnet18
from mi_keras.models.architectures.small_cnn import small_cnn
from mi_keras.models.architectures.vgg19 import vgg19
from mi_keras.models.architectures.wide_resnet import wide_resnet


class Architecture(ParsableEnum):
    """The classifiers of the model zoo; ``Architecture.parse("ResNet18")`` accepts any case."""

    RESNET18 = "resnet18"  # the paper's target model
    PREACT_RESNET18 = "preact_resnet18"
    WIDE_RESNET = "wide_resnet"  # any depth / widen_factor
    WRN34_10 = "wrn34_10"  # WRN-34-10, the official MIAT code's target model
    VGG19 = "vgg19"  # the paper's black-box surrogate
    SMALL_CNN = "small_cnn"  # the TRADES MNIST network

    @property
    def builder(self) -> Callable[..., keras.Model]:
        return _BUILDERS[self][0]

    @property
    def fixed_options(self) -> dict[str, Any]:
        """Options this name pins (``wrn34_10`` pins depth and width)."""
        return dict(_BUILDERS[self][1])


_BUILDERS: dict[Architecture, tuple[Callable[..., keras.Model], dict[str, Any]]] = {
    Architecture.RESNET18: (resnet18, {}),
    Architecture.PREACT_RESNET18: (preact_resnet18, {}),
    Architecture.WIDE_RESNET: (wide_resnet, {}),
    Architecture.WRN34_10: (wide_resnet, {"depth": 34, "widen_factor": 10}),
    Architecture.VGG19: (vgg19, {}),
    Architecture.SMALL_CNN: (small_cnn, {}),
}


def build_classifier(
    architecture: str | Architecture,
    input_shape: Sequence[int],
    num_classes: int,
    **options: Any,
) -> keras.Model:
    """Builds a zoo classifier by name; the model maps images in [0, 1] to logits.

    Example:
    ```python
    from mi_keras.models import build_classifier

    model = build_classifier("resnet18", input_shape=(32, 32, 3), num_classes=10)
    digits = build_classifier("small_cnn", (8, 8, 1), 10, padding="same")
    ```

    Args:
        architecture: an `Architecture` or its name: ``"resnet18"``, ``"preact_resnet18"``,
            ``"wide_resnet"``, ``"wrn34_10"``, ``"vgg19"`` or ``"small_cnn"``.
        input_shape: ``(height, width, channels)``.
        num_classes: number of logits.
        **options: the builder's keyword options (for instance ``depth`` and
            ``widen_factor`` for ``"wide_resnet"``, ``padding`` for ``"small_cnn"``).

    Raises:
        ValueError: for an unknown architecture, or an option the builder does not take or
            that the name already fixes.
    """
    architecture = Architecture.parse(architecture, "architecture")
    fixed = architecture.fixed_options
    pinned = sorted(set(options) & set(fixed))
    if pinned:
        raise ValueError(
            f"Architecture {architecture.value!r} fixes {pinned} to "
            f"{[fixed[key] for key in pinned]}; use 'wide_resnet' to choose them."
        )
    accepted = sorted(
        parameter.name
        for parameter in inspect.signature(architecture.builder).parameters.values()
        if parameter.kind is inspect.Parameter.KEYWORD_ONLY and parameter.name not in fixed
    )
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ValueError(
            f"Unknown option(s) {unknown} for architecture {architecture.value!r}; accepted options: {accepted}."
        )
    return architecture.builder(input_shape, num_classes, **fixed, **options)
