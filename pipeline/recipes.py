"""Two named MIAT recipes, as overrides of any config: the official code's and the paper's.

Zhou et al. (ICML 2022) describe one recipe in the paper and released code that trains
another (docs/paper_experiments.md and the reference notes list every difference). A recipe
here is the set of ``--set`` assignments that turns a config's MIAT into one of them; the
model, the data, their sizes and the epochs stay the config's, so a CPU-sized study can run
either recipe on a small network, and says so.

| setting | ``official`` (train_MIAT.py, train_MI_estimator.py) | ``paper`` (the text) |
|---|---|---|
| MIAT training attack | PGD-40, step 0.007 at eps 8/255 (0.2231 eps), start x + 0.001 N(0, I) | PGD-10, step eps / 4 |
| Eq. 6 selection | softmax over the batch axis (the code's labels) | argmax of the logits |
| lambda, alpha | 0 (the term is commented out), 5 | 0.1, 5 |
| batch | 256 | 1024 |
| clean warm-up | 2 epochs of cross-entropy at the training rate | none |
| estimators | 2048 units, 25 epochs, Adam 1e-2 / 10 at 10 and 20, batch 400, contrastive objective, the code's DV variant, batch-softmax labels | contrastive objective (Eq. 5), exact DV, argmax labels |

Kept from the paper in both (design decisions): the estimators use the training threat
model (the code paired L2 estimators with L-inf training), and model selection uses a
validation split (the code selected on the test set).

Example:
```python
from pipeline.settings import load_config, with_overrides
from pipeline.recipes import Recipe, recipe_overrides

config = load_config("quickstart")
config = with_overrides(config, recipe_overrides(Recipe.OFFICIAL, config))
```
"""

from __future__ import annotations

from mi_keras.enums import ParsableEnum, ThreatModel
from pipeline.settings import ConfigError, PipelineConfig

# The official step at the official eps: 0.007 at 8/255, applied as the same fraction of eps.
_OFFICIAL_STEP_FRACTION = 0.007 / (8 / 255)


class Recipe(ParsableEnum):
    """A named MIAT recipe (`recipe_overrides`)."""

    OFFICIAL = "official"  # what the released code does
    PAPER = "paper"  # what the paper's text says


def recipe_overrides(recipe: str | Recipe, config: PipelineConfig) -> list[str]:
    """The ``--set`` assignments that make ``config``'s MIAT follow ``recipe``."""
    recipe = Recipe.parse(recipe, "recipe")
    eps = config.attack.eps
    if recipe is Recipe.OFFICIAL:
        if config.attack.threat_model is not ThreatModel.LINF:
            raise ConfigError("The official recipe is L-inf (the released code trains MIAT under L-inf only).")
        return [
            "attack.random_start=normal",
            "train.attack_steps=40",
            f"train.attack_step_size={_OFFICIAL_STEP_FRACTION * eps!r}",
            "train.selection=batch_softmax",
            "train.lam=0",
            "train.alpha=5",
            "train.difference=selected_mean",
            "train.batch_size=256",
            "train.warmup_epochs=2",
            "estimators.units=2048",
            "estimators.epochs=25",
            "estimators.learning_rate=0.01",
            "estimators.lr_milestones=[10, 20]",
            "estimators.lr_decay=0.1",
            "estimators.batch_size=400",
            "estimators.objective=contrastive",
            "estimators.dv=reference",
            "estimators.selection=batch_softmax",
        ]
    return [
        "train.attack_steps=10",
        f"train.attack_step_size={eps / 4!r}",
        "train.selection=logits",
        "train.lam=0.1",
        "train.alpha=5",
        "train.difference=selected_mean",
        "train.batch_size=1024",
        "train.warmup_epochs=0",
        "estimators.objective=contrastive",
        "estimators.dv=exact",
        "estimators.selection=logits",
    ]
