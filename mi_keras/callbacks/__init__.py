"""Keras callbacks for adversarial and MI-defense training."""

from mi_keras.callbacks.mi_health_monitor import MIHealthMonitor, MIHealthWarning, health_findings, health_verdict

__all__ = [
    "health_findings",
    "health_verdict",
    "MIHealthMonitor",
    "MIHealthWarning",
]
