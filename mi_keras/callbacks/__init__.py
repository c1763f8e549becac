"""Keras callbacks for adversarial and MI-defense training."""

from mi_keras.callbacks.estimator_refit import EstimatorRefit
from mi_keras.callbacks.mi_health_monitor import MIHealthMonitor, MIHealthWarning, health_findings, health_verdict

__all__ = [
    "EstimatorRefit",
    "health_findings",
    "health_verdict",
    "MIHealthMonitor",
    "MIHealthWarning",
]
