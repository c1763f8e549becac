"""Mutual-information estimation: local encoder, global network, bounds, estimator, MIAT's MI terms."""

from mi_keras.mi import bounds
from mi_keras.mi.estimator_width import default_units
from mi_keras.mi.global_network import GlobalNetwork
from mi_keras.mi.initializers import IdentityUniform
from mi_keras.mi.local_encoder import LocalEncoder
from mi_keras.mi.mi_estimator import MIEstimator
from mi_keras.mi.mi_terms import MITerms, mi_terms, pattern_features, score_against

__all__ = [
    "bounds",
    "default_units",
    "GlobalNetwork",
    "IdentityUniform",
    "LocalEncoder",
    "mi_terms",
    "MIEstimator",
    "MITerms",
    "pattern_features",
    "score_against",
]
