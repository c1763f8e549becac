"""One MI estimator: a local encoder for the pattern, a global network for the logits, a bound."""

from __future__ import annotations

import keras
import tensorflow as tf

from mi_keras.enums import Bound, DVVariant, LogitNormalization
from mi_keras.mi.bounds import per_sample_mi
from mi_keras.mi.estimator_width import PAPER_UNITS, default_units
from mi_keras.mi.global_network import GlobalNetwork
from mi_keras.mi.local_encoder import LocalEncoder
from mi_keras.serialization import deserialize_if_config


@keras.saving.register_keras_serializable(package="mi_keras")
class MIEstimator(keras.layers.Layer):
    """Estimates ``I(pattern; h(x))`` per sample (local DIM with a per-sample bound).

    MIAT (Zhou et al., "Improving Adversarial Robustness via Mutual Information
    Estimation", ICML 2022) uses two of these: the natural estimator (pattern = the clean
    image ``x``) and the adversarial one (pattern = the noise ``x_adv - x``), both paired
    with the classifier's logits on ``x`` or ``x_adv``.

    ``encode`` and ``score`` split the computation so a training step can run the (costly)
    local encoder once per pattern and score it against several logits.

    Example:
    ```python
    import numpy as np
    from mi_keras.mi import MIEstimator
    from mi_keras.models import build_classifier

    images = np.random.default_rng(0).random((4, 32, 32, 3), dtype=np.float32)
    classifier = build_classifier("small_cnn", (32, 32, 3), 10)
    estimator = MIEstimator.for_classifier(input_shape=(32, 32, 3), num_classes=10, units=64)
    mi = estimator(images, classifier(images))  # [batch] float32
    ```

    Args:
        local_encoder: a `LocalEncoder`; built with ``units`` if None.
        global_network: a `GlobalNetwork`; built with ``units`` if None.
        units: feature width when the sub-networks are created here.
        bound: ``"dv"`` (default), ``"jsd"`` or ``"infonce"``.
        dv: ``"exact"`` (default) or ``"reference"`` (the official code's DV variant).
        chunk_size: optional row chunk for the score tensor (see `bounds.per_sample_mi`).
        logit_normalization: ``"none"`` (default, the paper), ``"center"`` or
            ``"standardize"``: what is done to each sample's logits before the global
            network (`LogitNormalization`; a stabiliser, not in the paper).
        **kwargs: forwarded to `keras.layers.Layer`.
    """

    def __init__(
        self,
        local_encoder: LocalEncoder | None = None,
        global_network: GlobalNetwork | None = None,
        units: int = PAPER_UNITS,
        bound: str | Bound = Bound.DV,
        dv: str | DVVariant = DVVariant.EXACT,
        chunk_size: int | None = None,
        logit_normalization: str | LogitNormalization = LogitNormalization.NONE,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.local_encoder = deserialize_if_config(local_encoder) or LocalEncoder(units, name="local_encoder")
        self.global_network = deserialize_if_config(global_network) or GlobalNetwork(units, name="global_network")
        if self.local_encoder.units != self.global_network.units:
            raise ValueError(
                "`local_encoder` and `global_network` must have the same `units`; got "
                f"{self.local_encoder.units} and {self.global_network.units}."
            )
        self.units = self.local_encoder.units
        self.bound = Bound.parse(bound, "bound")
        self.dv = DVVariant.parse(dv, "dv")
        if chunk_size is not None and (not isinstance(chunk_size, int) or chunk_size < 1):
            raise ValueError(f"`chunk_size` must be a positive integer or None; got {chunk_size!r}.")
        self.chunk_size = chunk_size
        self.logit_normalization = LogitNormalization.parse(logit_normalization, "logit_normalization")

    @classmethod
    def for_classifier(
        cls,
        input_shape,
        num_classes: int,
        units: int | None = None,
        classifier: keras.Model | None = None,
        **kwargs,
    ) -> MIEstimator:
        """A built estimator for images of ``input_shape`` (H, W, C) and ``num_classes`` logits.

        ``units`` None picks the width: `estimator_width.default_units` of ``classifier`` (the
        widest of 64 ... 2048 costing at most one classifier forward pass) when one is given,
        else the paper's 2048.
        """
        if units is None:
            units = PAPER_UNITS if classifier is None else default_units(classifier, input_shape)
        estimator = cls(units=units, **kwargs)
        estimator.build((None, *input_shape), (None, num_classes))
        return estimator

    def build(self, pattern_shape, logits_shape):
        # Deserialised sub-networks arrive built; building them again would add weights.
        if not self.local_encoder.built:
            self.local_encoder.build(tuple(pattern_shape))
        if not self.global_network.built:
            self.global_network.build(tuple(logits_shape))

    @property
    def num_classes(self) -> int | None:
        return self.global_network.num_classes

    def encode(self, pattern, training=None) -> tf.Tensor:
        """Local features ``[batch, positions, units]`` of a pattern."""
        return self.local_encoder(pattern, training=training)

    def score(self, local_features, logits, training=None, positive_index=None, bound=None) -> tf.Tensor:
        """Per-sample MI between precomputed local features and the logits, float32 ``[rows]``.

        ``bound`` (a `Bound`) evaluates the same critic under another bound; None uses this
        estimator's.
        """
        global_features = self.global_network(self._normalized(logits), training=training)
        return per_sample_mi(
            global_features,
            local_features,
            bound=self.bound if bound is None else Bound.parse(bound, "bound"),
            dv_variant=self.dv,
            positive_index=positive_index,
            chunk_size=self.chunk_size,
        )

    def _normalized(self, logits: tf.Tensor) -> tf.Tensor:
        if self.logit_normalization is LogitNormalization.NONE:
            return logits
        logits = tf.cast(logits, tf.float32)
        centered = logits - tf.reduce_mean(logits, axis=-1, keepdims=True)
        if self.logit_normalization is LogitNormalization.CENTER:
            return centered
        # The floor keeps a constant logit vector (a collapsed classifier) finite.
        scale = tf.sqrt(tf.reduce_mean(tf.square(centered), axis=-1, keepdims=True) + 1e-6)
        return centered / scale

    def call(self, pattern, logits, training=None):
        return self.score(self.encode(pattern, training=training), logits, training=training)

    def compute_output_shape(self, pattern_shape, logits_shape):
        return (logits_shape[0],)

    def get_config(self):
        return {
            **super().get_config(),
            "local_encoder": keras.saving.serialize_keras_object(self.local_encoder),
            "global_network": keras.saving.serialize_keras_object(self.global_network),
            "units": self.units,
            "bound": self.bound.value,
            "dv": self.dv.value,
            "chunk_size": self.chunk_size,
            "logit_normalization": self.logit_normalization.value,
        }
