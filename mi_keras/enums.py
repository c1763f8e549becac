"""Enumerations used across mi-keras instead of magic strings (RobustBench style).

Every enum is a ``str`` subclass, so configs may keep plain strings: ``ThreatModel("Linf")``
and ``ThreatModel.parse("linf")`` both give ``ThreatModel.LINF``.
"""

from __future__ import annotations

import enum


class ParsableEnum(str, enum.Enum):
    """A string enum whose ``parse`` accepts any case and names the valid values on error."""

    @classmethod
    def parse(cls, value: str | ParsableEnum, argument: str | None = None):
        if isinstance(value, cls):
            return value
        if isinstance(value, str):
            for member in cls:
                if value.lower() in (member.value.lower(), member.name.lower()):
                    return member
        accepted = ", ".join(repr(member.value) for member in cls)
        name = argument or cls.__name__
        raise ValueError(f"Unknown {name} {value!r}; expected one of {accepted}.")

    def __str__(self) -> str:
        return self.value


class ThreatModel(ParsableEnum):
    """The geometry of the perturbation ball: a norm, or a Wasserstein radius."""

    LINF = "Linf"
    L2 = "L2"
    # Transport cost (pixel distance x mass moved) as a fraction of the image's total mass:
    # the ball of FWA (Wu et al., 2020); an attack states which balls it supports.
    WASSERSTEIN = "Wasserstein"


class RandomStart(ParsableEnum):
    """How an iterative attack initialises its perturbation."""

    NORMAL = "normal"  # x + 0.001 * N(0, I): the official MIAT code
    UNIFORM = "uniform"  # uniform in the eps ball (Madry et al.)
    NONE = "none"


class AttackLoss(ParsableEnum):
    """The objective an attack maximises."""

    CE = "ce"  # cross-entropy: PGD
    MARGIN = "margin"  # Carlini-Wagner margin on the logits: CW-inf
    KL = "kl"  # KL(h(x) || h(x_adv)): the TRADES inner maximisation
    DLR = "dlr"  # difference of logits ratio (Croce and Hein, 2020)


class BaseLoss(ParsableEnum):
    """The adversarial-training loss that MIAT's MI term is added to."""

    CE = "ce"  # standard AT (Madry et al.): NAMID
    TRADES = "trades"  # Zhang et al. 2019: NAMID_T
    MART = "mart"  # Wang et al. 2020: NAMID_M


class Bound(ParsableEnum):
    """Mutual-information lower bound evaluated per sample."""

    DV = "dv"  # Donsker-Varadhan (the paper's)
    JSD = "jsd"  # Jensen-Shannon (Hjelm et al., 2018)
    INFONCE = "infonce"  # van den Oord et al., 2018


class DVVariant(ParsableEnum):
    """Which Donsker-Varadhan estimator to compute."""

    EXACT = "exact"  # diagonal excluded exactly, log(B - 1) normaliser
    REFERENCE = "reference"  # the official code: diagonal zeroed, so a spurious exp(0) stays


class Selection(ParsableEnum):
    """How the predicted label of Eq. 6 (correct on x, fooled on x_adv) is computed."""

    LOGITS = "logits"  # argmax of the logits (the paper)
    BATCH_SOFTMAX = "batch_softmax"  # argmax of softmax over the batch axis (the official code's bug)


class MIDifference(ParsableEnum):
    """How MIAT reduces its lambda term ``I_A(n; h(x_adv)) - I_N(x; h(x_adv))`` over the batch.

    docs/lambda.md measures why the paper's reduction diverges early in training.
    """

    SELECTED_MEAN = "selected_mean"  # mean over the selected samples (the paper, Eq. 8)
    BATCH_MEAN = "batch_mean"  # sum over the selected samples / batch size: fades with the selection
    RELATIVE = "relative"  # the selected mean over the (gradient-free) mean of |I_A| + |I_N|: scale-free


class EstimatorObjective(ParsableEnum):
    """Stage-1 objective for the MI estimators."""

    CONTRASTIVE = "contrastive"  # the official code's reading of Eq. 5 (cosine terms)
    MIM = "mim"  # Eq. 4: plain maximisation on the selected samples


class HealthRule(ParsableEnum):
    """What `mi_keras.callbacks.MIHealthMonitor` warns about."""

    COLLAPSE = "collapse"  # validation accuracy back at chance after having been above it
    CONSTANT_PREDICTIONS = "constant_predictions"  # (nearly) one class predicted for every image
    INERT_MI = "inert_mi"  # the frozen estimators read no natural MI in the classifier's logits
    MI_GRADIENT_DOMINATES = "mi_gradient_dominates"  # the MI term's gradient dwarfs the base loss's


class LogitNormalization(ParsableEnum):
    """What an `MIEstimator` does to the logits before its global network.

    Cross-entropy does not change when a constant is added to every logit; a global network
    does. ``CENTER`` removes each sample's mean logit, so the classifier cannot drift out of
    the estimator's range that way; ``STANDARDIZE`` also divides by each sample's standard
    deviation (the logits' scale). The estimator must be trained with the setting it is used with.
    """

    NONE = "none"  # the paper: raw logits
    CENTER = "center"
    STANDARDIZE = "standardize"


class EstimatorReading(ParsableEnum):
    """Whether the frozen natural estimator reads a classifier's logits (`MIProbe`'s control).

    The probe scores ``I_N(x; h(x))`` twice more: with every sample's logits replaced by the
    batch mean (a constant: whatever the estimator reads then comes from the image alone), and
    with the logits centred and rescaled to the spread of the classifier the estimator was
    trained on. A raw estimate no higher than the constant's is not low MI: it says nothing.
    """

    READS = "reads"  # the raw logits score above the constant: the estimate measures something
    OUT_OF_RANGE = "out_of_range"  # the centred-rescaled logits score at least twice as high: the logits drifted
    BLIND = "blind"  # neither scores above the constant: the estimator does not read this classifier
