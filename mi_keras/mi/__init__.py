"""Mutual-information estimation: local encoder, global network, bounds, estimator pair."""

from mi_keras.mi import bounds
from mi_keras.mi.global_network import GlobalNetwork
from mi_keras.mi.initializers import IdentityUniform
from mi_keras.mi.local_encoder import LocalEncoder
from mi_keras.mi.mi_estimator import MIEstimator
