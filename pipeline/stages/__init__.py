"""The pipeline's stages: each module registers one (`register_stage`: its name and order).

Importing the package imports every module in it, so a new stage is one new module here.
"""

import importlib
import pkgutil

from pipeline.orchestration.stage import all_stages

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["all_stages"]
