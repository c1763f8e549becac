"""The base class of every attack: a small, serializable, configurable callable."""

from __future__ import annotations

import numbers
from typing import Any

import keras
import tensorflow as tf

from mi_keras.enums import ThreatModel


@keras.saving.register_keras_serializable(package="mi_keras")
class Attack:
    """Base class: ``attack(model, x, y)`` returns adversarial examples.

    Attacks are plain objects, not Keras layers: a layer would autocast ``x`` to the
    compute dtype under a mixed-precision policy (the perturbation must stay float32) and
    would track the attacked model as a sub-layer. They own no variables, so one attack can
    be called from any ``tf.function``, replica or XLA cluster.

    Each attack states its own ball: ``supported_threat_models`` lists the geometries it can
    bound (``Linf`` and ``L2`` unless a subclass says otherwise), and ``threat_model`` with
    ``eps`` is the ball of an instance. An L-inf or L2 attack returns ``x_adv`` with
    ``||x_adv - x|| <= eps`` inside the [0, 1] box; a Wasserstein attack (`FWA`) returns
    ``x_adv`` reachable from ``x`` by moving pixel mass at a transport cost of at most
    ``eps`` times the image's total mass (the mass is kept, see `FWA` for the box).

    Randomness is stateless when a seed is known: ``seed`` (an int) fixes every call, and a
    ``seed`` tensor of shape ``[2]`` passed to ``__call__`` (for instance derived from the
    optimizer step) overrides it. With neither, TensorFlow's global generator is used.

    Args:
        eps: radius of the threat-model ball, in [0, 1] pixel units.
        threat_model: one of ``supported_threat_models`` (see `mi_keras.enums.ThreatModel`).
        seed: optional int for reproducible random starts.
        name: optional display name.
    """

    supported_threat_models: tuple[ThreatModel, ...] = (ThreatModel.LINF, ThreatModel.L2)
    # Set by the attacks of a single ball (DDN, TI-DIM, FWA, CW-inf, CW-L2): it is their only
    # supported threat model, their constructors take none and their configs carry none.
    fixed_threat_model: ThreatModel | None = None

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.fixed_threat_model is not None:  # one ball: the only one it supports
            cls.supported_threat_models = (cls.fixed_threat_model,)

    def __init__(
        self,
        eps: float,
        threat_model: str | ThreatModel = ThreatModel.LINF,
        seed: int | None = None,
        name: str | None = None,
    ):
        if not eps or eps <= 0:
            raise ValueError(f"`eps` must be > 0 (the radius of the threat-model ball); got {eps}.")
        self.eps = float(eps)
        self.threat_model = ThreatModel.parse(threat_model, "threat_model")
        if self.threat_model not in self.supported_threat_models:
            accepted = ", ".join(member.value for member in self.supported_threat_models)
            raise ValueError(
                f"{type(self).__name__} bounds the threat model(s) {accepted}; got {self.threat_model.value!r}."
            )
        if seed is not None and not isinstance(seed, int):
            raise ValueError(f"`seed` must be an int or None; got {seed!r}.")
        self.seed = seed
        self.name = name or type(self).__name__

    def __call__(self, model: keras.Model, x, y, seed=None) -> tf.Tensor:
        """Returns ``x_adv`` inside the attack's ball (see the class docstring).

        Args:
            model: a callable returning logits; it is run with ``training=False``.
            x: float images in [0, 1], shape ``[batch, ...]``.
            y: integer labels, shape ``[batch]``.
            seed: optional int tensor of shape ``[2]`` for stateless randomness.
        """
        x = tf.convert_to_tensor(x, tf.float32)
        y = tf.cast(tf.reshape(y, [-1]), tf.int32)
        if seed is None and self.seed is not None:
            seed = tf.constant([self.seed, 0], tf.int64)
        return tf.stop_gradient(self.perturb(model, x, y, seed))

    def perturb(self, model, x: tf.Tensor, y: tf.Tensor, seed) -> tf.Tensor:
        raise NotImplementedError(f"{type(self).__name__} must implement `perturb`.")

    def get_config(self) -> dict[str, Any]:
        config = {"eps": self.eps, "threat_model": self.threat_model.value, "seed": self.seed, "name": self.name}
        if self.fixed_threat_model is not None:
            del config["threat_model"]
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any]):
        return cls(**config)

    def __repr__(self) -> str:
        args = ", ".join(f"{key}={value!r}" for key, value in self.get_config().items())
        return f"{type(self).__name__}({args})"


def logits_of(model, x: tf.Tensor, training: bool = False) -> tf.Tensor:
    """The model's logits (inference mode by default), as float32 whatever the precision
    policy: objectives, losses and masks need full precision."""
    return tf.cast(model(x, training=training), tf.float32)


def positive_integer(value, argument: str) -> int:
    """``value`` as an int >= 1 (NumPy integers from tuners are fine; bools are not)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"`{argument}` must be an integer >= 1; got {value!r}.")
    return int(value)
