"""The attacks the robustness suite knows by name, and how each is configured at one eps."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from mi_keras.attacks import FGSM, PGD, CWLinf
from mi_keras.attacks.apgd import APGD
from mi_keras.attacks.apgd_targeted import APGDTargeted
from mi_keras.attacks.attack import Attack
from mi_keras.attacks.auto_attack import AutoAttack
from mi_keras.attacks.cw_l2 import CWL2
from mi_keras.attacks.ddn import DDN
from mi_keras.attacks.fab import FAB
from mi_keras.attacks.fwa import FWA
from mi_keras.attacks.square import Square
from mi_keras.attacks.ti_dim import TIDIM
from mi_keras.enums import AttackLoss, ParsableEnum, RandomStart, ThreatModel


class AttackSpec(ParsableEnum):
    """A named evaluation attack with the protocol's settings (docs/method.md, section 8).

    Clean accuracy is always measured (robust accuracy is defined relative to it), so it is
    not a member. ``TRANSFER`` crafts on a surrogate model (see `mi_keras.evaluation.transfer`).
    ``FWA10`` / ``FWA40`` run in an L-inf suite, as in the paper's tables, but bound their own
    ball: the suite's eps becomes a Wasserstein radius (see `ball` and `mi_keras.attacks.FWA`).

    Example:
    ```python
    from mi_keras.evaluation import AttackSpec

    AttackSpec.parse("pgd40").build(eps=0.3, threat_model="Linf", restarts=1, seed=0)
    ```
    """

    FGSM = "fgsm"
    PGD10 = "pgd10"
    PGD20 = "pgd20"
    PGD40 = "pgd40"
    CW_INF = "cw_inf"
    AUTOATTACK = "autoattack"
    APGD_CE = "apgd_ce"
    APGD_DLR = "apgd_dlr"
    APGD_T = "apgd_t"
    FAB_T = "fab_t"
    SQUARE = "square"
    TI_DIM = "ti_dim"
    DDN = "ddn"
    CW_L2 = "cw_l2"
    FWA10 = "fwa10"
    FWA40 = "fwa40"
    TRANSFER = "transfer"

    @property
    def display_name(self) -> str:
        """The column title of reports and tables (``"PGD-40"``), also the built attack's name."""
        return _ENTRIES[self].display_name

    @property
    def white_box(self) -> bool:
        """False for attacks that never read the target's gradient (Square, transfer)."""
        return _ENTRIES[self].white_box

    @property
    def threat_models(self) -> tuple[ThreatModel, ...]:
        """The suite threat models this attack runs in."""
        return _ENTRIES[self].threat_models

    def ball(self, threat_model: str | ThreatModel) -> ThreatModel:
        """The ball the attack bounds when run in a suite of ``threat_model``."""
        return _ENTRIES[self].own_ball or ThreatModel.parse(threat_model, "threat_model")

    def build(
        self,
        eps: float,
        threat_model: str | ThreatModel,
        restarts: int = 1,
        seed: int | None = None,
        batch_size: int = 250,
    ) -> Attack:
        """The attack at radius ``eps`` (``TRANSFER`` has none of its own: it runs another
        spec's attack on a surrogate, see `RobustnessSuite`).

        Args:
            eps: ball radius.
            threat_model: ``"Linf"`` or ``"L2"``; must be one of `threat_models`.
            restarts: random restarts of the PGD-family attacks (PGD-20, PGD-40, CW-inf,
                CW-L2); AutoAttack and its components keep their published settings, TI-DIM
                its published defaults, CW-L2 and DDN the paper's 20 iterations.
            seed: int seed stored in the attack's config.
            batch_size: AutoAttack's chunk size (the other attacks take whole batches).
        """
        threat_model = ThreatModel.parse(threat_model, "threat_model")
        if threat_model not in self.threat_models:
            accepted = ", ".join(member.value for member in self.threat_models)
            raise ValueError(
                f"Attack {self.value!r} is defined for threat model(s) {accepted}; got {threat_model.value!r}."
            )
        if not isinstance(restarts, int) or restarts < 1:
            raise ValueError(f"`restarts` must be an integer >= 1; got {restarts!r}.")
        entry = _ENTRIES[self]
        if entry.build is None:
            buildable = [spec.value for spec, other in _ENTRIES.items() if other.build is not None]
            raise ValueError(f"Attack {self.value!r} cannot be built on its own; available: {', '.join(buildable)}.")
        return entry.build(_Settings(float(eps), threat_model, restarts, seed, batch_size, entry.display_name))


def default_attacks(threat_model: str | ThreatModel) -> list[AttackSpec]:
    """The protocol's attack list for a threat model (docs/method.md, section 8)."""
    if ThreatModel.parse(threat_model, "threat_model") == ThreatModel.LINF:
        return [
            AttackSpec.FGSM,
            AttackSpec.PGD20,
            AttackSpec.PGD40,
            AttackSpec.CW_INF,
            AttackSpec.AUTOATTACK,
        ]
    return [AttackSpec.PGD40, AttackSpec.CW_L2, AttackSpec.AUTOATTACK]


def paper_transfer_attacks(threat_model: str | ThreatModel) -> list[AttackSpec]:
    """The attacks the paper crafts on its surrogate (Tables 2, 5 and 6)."""
    if ThreatModel.parse(threat_model, "threat_model") == ThreatModel.LINF:
        return [AttackSpec.PGD40, AttackSpec.AUTOATTACK, AttackSpec.FWA40, AttackSpec.TI_DIM]
    return [AttackSpec.PGD40, AttackSpec.CW_L2, AttackSpec.DDN]


def parse_attack_list(value: str | list) -> list[AttackSpec]:
    """``"pgd20,pgd40"`` or a list of names / members -> a de-duplicated list of members."""
    names = value.split(",") if isinstance(value, str) else list(value)
    specs = []
    for name in names:
        if isinstance(name, str) and not name.strip():
            continue
        spec = AttackSpec.parse(name.strip() if isinstance(name, str) else name, "attacks")
        if spec not in specs:
            specs.append(spec)
    if not specs:
        raise ValueError(f"`attacks` names no attack; got {value!r}.")
    return specs


@dataclasses.dataclass(frozen=True)
class _Settings:
    eps: float
    threat_model: ThreatModel
    restarts: int
    seed: int | None
    batch_size: int
    name: str  # the spec's display name


def _pgd(steps: int):
    def build(settings: _Settings) -> Attack:
        return PGD(
            settings.eps,
            steps=steps,
            threat_model=settings.threat_model,
            random_start=RandomStart.UNIFORM,
            restarts=settings.restarts,
            seed=settings.seed,
            name=settings.name,
        )

    return build


def _fgsm(settings: _Settings) -> Attack:
    return FGSM(settings.eps, threat_model=settings.threat_model, seed=settings.seed, name=settings.name)


def _cw_inf(settings: _Settings) -> Attack:
    return CWLinf(settings.eps, restarts=settings.restarts, seed=settings.seed, name=settings.name)


# AutoAttack and its components keep the published settings ("standard" version): 100
# iterations, 1 restart, 9 target classes, 5,000 Square queries.
def _auto_attack(settings: _Settings) -> Attack:
    return AutoAttack(
        settings.eps,
        threat_model=settings.threat_model,
        version="standard",
        batch_size=settings.batch_size,
        seed=settings.seed,
        name=settings.name,
    )


def _apgd(loss: AttackLoss):
    def build(settings: _Settings) -> Attack:
        return APGD(
            settings.eps,
            threat_model=settings.threat_model,
            loss=loss,
            steps=100,
            seed=settings.seed,
            name=settings.name,
        )

    return build


def _apgd_t(settings: _Settings) -> Attack:
    return APGDTargeted(
        settings.eps,
        threat_model=settings.threat_model,
        steps=100,
        n_target_classes=9,
        seed=settings.seed,
        name=settings.name,
    )


def _fab_t(settings: _Settings) -> Attack:
    return FAB(
        settings.eps,
        threat_model=settings.threat_model,
        steps=100,
        targeted=True,
        n_target_classes=9,
        seed=settings.seed,
        name=settings.name,
    )


def _ti_dim(settings: _Settings) -> Attack:
    # The published TI-DIM (15x15 kernel, diversity 0.5, momentum 1.0), 40 steps of eps / 4;
    # the official MIAT code ran it with diversity off and momentum 0.1 (see `TIDIM`).
    return TIDIM(settings.eps, steps=40, seed=settings.seed, name=settings.name)


def _fwa(steps: int):
    # MIAT's FWA-40: a 4 x 4 window, step eps / 4, 15 dual halvings, tolerances 1e-4, the
    # L-inf column's eps as the Wasserstein radius, and the unclipped transported image.
    def build(settings: _Settings) -> Attack:
        return FWA(settings.eps, steps=steps, seed=settings.seed, name=settings.name)

    return build


def _ddn(settings: _Settings) -> Attack:
    return DDN(settings.eps, steps=20, seed=settings.seed, name=settings.name)  # the paper's 20 iterations


def _cw_l2(settings: _Settings) -> Attack:
    return CWL2(settings.eps, steps=20, restarts=settings.restarts, seed=settings.seed, name=settings.name)


def _square(settings: _Settings) -> Attack:
    return Square(
        settings.eps,
        threat_model=settings.threat_model,
        queries=5000,
        seed=settings.seed,
        name=settings.name,
    )


@dataclasses.dataclass(frozen=True)
class _Entry:
    """Every fact of one spec: its name, where it runs, how it is built."""

    display_name: str
    build: Callable[[_Settings], Attack] | None  # None: not an attack of its own (transfer)
    threat_models: tuple[ThreatModel, ...] = (ThreatModel.LINF, ThreatModel.L2)
    white_box: bool = True
    own_ball: ThreatModel | None = None  # the ball it bounds whatever the suite's (FWA)


_LINF_ONLY = (ThreatModel.LINF,)
_ENTRIES = {
    AttackSpec.FGSM: _Entry("FGSM", _fgsm),
    AttackSpec.PGD10: _Entry("PGD-10", _pgd(10)),
    AttackSpec.PGD20: _Entry("PGD-20", _pgd(20)),
    AttackSpec.PGD40: _Entry("PGD-40", _pgd(40)),
    AttackSpec.CW_INF: _Entry("CW-inf", _cw_inf, _LINF_ONLY),
    AttackSpec.AUTOATTACK: _Entry("AutoAttack", _auto_attack),
    AttackSpec.APGD_CE: _Entry("APGD-CE", _apgd(AttackLoss.CE)),
    AttackSpec.APGD_DLR: _Entry("APGD-DLR", _apgd(AttackLoss.DLR)),
    AttackSpec.APGD_T: _Entry("APGD-T", _apgd_t),
    AttackSpec.FAB_T: _Entry("FAB-T", _fab_t),
    AttackSpec.SQUARE: _Entry("Square", _square, white_box=False),
    AttackSpec.TI_DIM: _Entry("TI-DIM", _ti_dim, _LINF_ONLY),
    AttackSpec.DDN: _Entry("DDN", _ddn, (ThreatModel.L2,)),
    AttackSpec.CW_L2: _Entry("CW-L2", _cw_l2, (ThreatModel.L2,)),
    AttackSpec.FWA10: _Entry("FWA-10", _fwa(10), _LINF_ONLY, own_ball=ThreatModel.WASSERSTEIN),
    AttackSpec.FWA40: _Entry("FWA-40", _fwa(40), _LINF_ONLY, own_ball=ThreatModel.WASSERSTEIN),
    AttackSpec.TRANSFER: _Entry("Transfer", None, white_box=False),
}
