"""Square attack (Andriushchenko et al., 2020): score-based random search, no gradients."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import tensorflow as tf

from mi_keras.attacks.attack import Attack, logits_of, positive_integer
from mi_keras.attacks.geometry import (
    fold_seed,
    per_sample_l2_norm,
    random_uniform,
    where_samples,
)
from mi_keras.enums import ThreatModel
from mi_keras.objectives import margin

# The published schedule: p is halved after these iteration counts (out of 10,000).
_P_HALVING_POINTS = (10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000)
_TINY = 1e-12


def schedule_level(iteration, rescale_to: int | None = None) -> tf.Tensor:
    """How often p has been halved at ``iteration`` (0-based): ``p = p_init / 2^level``.

    With ``rescale_to`` (the number of queries), the iteration is first mapped to
    ``floor(10,000 * iteration / rescale_to)``.
    """
    iteration = tf.cast(iteration, tf.float32)
    if rescale_to is not None:
        iteration = tf.floor(iteration / rescale_to * 10000.0)
    return tf.reduce_sum(tf.cast(iteration > tf.constant(_P_HALVING_POINTS, tf.float32), tf.int32))


def _eta_rectangles(height: int, width: int) -> np.ndarray:
    """Concentric rectangles weighted 1 / (k + 1)^2, unit L2 norm (official ``eta_rectangles``)."""
    delta = np.zeros([height, width], np.float32)
    if height == 0 or width == 0:
        return delta
    row, col = height // 2, width // 2
    for k in range(max(row + 1, col + 1)):
        delta[max(row - k, 0) : min(row + k + 1, height), max(col - k, 0) : min(col + k + 1, width)] += (
            1.0 / (k + 1) ** 2
        )
    return delta / np.sqrt(np.sum(delta**2))


def _eta(side: int) -> np.ndarray:
    """The L2 square update: +rectangles on the top half, -rectangles on the bottom, unit norm."""
    delta = np.zeros([side, side], np.float32)
    delta[: side // 2] = _eta_rectangles(side // 2, side)
    delta[side // 2 :] = -_eta_rectangles(side - side // 2, side)
    return delta / np.sqrt(np.sum(delta**2))


def _side_of_level(level: int, p_init: float, height: int, width: int, threat_model) -> int:
    """The square side at a level of the schedule (p = p_init / 2^level), as the official code."""
    side = int(round(np.sqrt(p_init / 2**level * height * width)))
    if threat_model == ThreatModel.LINF:
        side = max(side, 1)
    else:
        side = max(side, 3)
        side += 1 - side % 2  # odd, so that the L2 pattern is centred
    return min(side, height, width)


def _window_mask(corner: tf.Tensor, side: tf.Tensor, height: int, width: int) -> tf.Tensor:
    """``[batch, H, W, 1]`` mask of one ``side x side`` square per sample at ``corner``."""
    rows = tf.range(height)[None, :]
    cols = tf.range(width)[None, :]
    in_rows = (rows >= corner[:, :1]) & (rows < corner[:, :1] + side)
    in_cols = (cols >= corner[:, 1:]) & (cols < corner[:, 1:] + side)
    return tf.cast(in_rows[:, :, None, None] & in_cols[:, None, :, None], tf.float32)


def _uniform_rows(seed, batch, tail: list[int], rows) -> tf.Tensor:
    """U[0, 1) noise drawn for the whole batch, then the ``rows`` of the samples still attacked:
    a sample's draws do not depend on which other samples are still robust."""
    shape = tf.concat([tf.reshape(batch, [1]), tf.constant(tail, tf.int32)], 0)
    return tf.gather(random_uniform(shape, seed), rows)


def _random_corner(side, height: int, width: int, uniform) -> tf.Tensor:
    """Top-left corners from ``[n, 2]`` uniforms, as the official ``randint(0, size - side)``."""
    room = tf.cast(tf.stack([height - side, width - side]), tf.float32)
    return tf.cast(tf.floor(uniform * room[None, :]), tf.int32)


def _place_pattern(pattern, corner, flips, height: int, width: int) -> tf.Tensor:
    """``[batch, H, W, 1]``: ``pattern`` (top-left aligned) shifted to each sample's corner,
    transposed where ``flips``; entries outside the pattern's table are clamped (mask them)."""
    size = tf.shape(pattern)[0]
    local_rows = tf.range(height)[None, :] - corner[:, :1]  # [batch, H]
    local_cols = tf.range(width)[None, :] - corner[:, 1:]  # [batch, W]
    rows = tf.broadcast_to(local_rows[:, :, None], tf.stack([tf.shape(corner)[0], height, width]))
    cols = tf.broadcast_to(local_cols[:, None, :], tf.shape(rows))
    flips = flips[:, None, None]
    first = tf.clip_by_value(tf.where(flips, cols, rows), 0, size - 1)
    second = tf.clip_by_value(tf.where(flips, rows, cols), 0, size - 1)
    return tf.gather_nd(pattern, tf.stack([first, second], -1))[..., None]


def _signs(uniform) -> tf.Tensor:
    """+-1 from U[0, 1) noise (the official ``sign(2 U - 1)``)."""
    return tf.sign(2.0 * uniform - 1.0)


@keras.saving.register_keras_serializable(package="mi_keras")
class Square(Attack):
    """Square attack (Andriushchenko et al., ECCV 2020), L-inf or L2, untargeted, margin loss.

    "Square Attack: a query-efficient black-box adversarial attack via random search". The model
    is only queried for logits (no gradients anywhere), so it also works on models whose
    gradients are zero or masked. Each iteration proposes, for every still-robust sample, a
    change on one random square window and keeps it when the margin ``z_y - max_{j != y} z_j``
    decreases; a sample stops once its margin is <= 0. The square covers a fraction ``p`` of the
    image, with ``p_init`` halved at iterations 10, 50, 200, 500, 1000, 2000, 4000, 6000 and 8000
    (the published schedule; with ``rescale_schedule`` those points are scaled to ``queries``
    as ``10,000 * i / queries``, the original repository's and ART's behaviour; AutoAttack
    uses the unscaled schedule).

    As in AutoAttack's implementation: L-inf starts from vertical stripes of +-eps and sets the
    window to ``x +- eps`` (one random sign per channel); L2 starts from a 5 x 5 grid of the
    ``eta`` patterns and moves mass between two random windows, keeping the norm at eps; the
    ``queries`` iterations follow one query of the starting point, and only the samples still
    classified correctly are queried (they are gathered inside the graph: the attack works in
    ``tf.function``, not under XLA). Difference by design: each sample draws its own square
    position, signs and pattern orientation, as in the original repository (AutoAttack's and
    ART's code draw one position per batch and iteration), from noise drawn for the whole
    batch, so a sample's search depends only on its own index, not on the other samples.

    Example:
    ```python
    from mi_keras.attacks import Square
    from mi_keras.data import load_dataset
    from mi_keras.models import build_classifier

    test, info = load_dataset("digits", "test", batch_size=8)  # 8x8 digits: no download
    images, labels = next(iter(test))
    model = build_classifier("small_cnn", info.image_shape, info.num_classes, padding="same")
    x_adv = Square(eps=8 / 255, queries=50, seed=0)(model, images, labels)  # AutoAttack: 5000 queries
    ```

    Args:
        eps: ball radius.
        threat_model: ``"Linf"`` or ``"L2"``.
        queries: iterations (model queries per sample after the first), >= 1.
        p_init: initial fraction of the image covered by the square, in (0, 1].
        restarts: independent runs on the still-robust samples.
        rescale_schedule: scale the p schedule to ``queries`` (see above).
        seed: optional int for reproducible search.
        name: optional display name.
    """

    def __init__(
        self,
        eps: float,
        threat_model: str | ThreatModel = ThreatModel.LINF,
        queries: int = 5000,
        p_init: float = 0.8,
        restarts: int = 1,
        rescale_schedule: bool = False,
        seed: int | None = None,
        name: str | None = None,
    ):
        super().__init__(eps=eps, threat_model=threat_model, seed=seed, name=name)
        self.queries = positive_integer(queries, "queries")
        if not 0.0 < p_init <= 1.0:
            raise ValueError(f"`p_init` must be in (0, 1]; got {p_init!r}.")
        self.restarts = positive_integer(restarts, "restarts")
        self.p_init = float(p_init)
        self.rescale_schedule = bool(rescale_schedule)

    def perturb(self, model, x, y, seed):
        if len(x.shape) != 4 or None in x.shape[1:]:
            raise ValueError(f"Square needs images of static shape [batch, H, W, C]; got {x.shape}.")
        height, width = x.shape[1], x.shape[2]
        if self.threat_model == ThreatModel.L2 and min(height, width) < 5:
            raise ValueError(f"L2 Square needs images of at least 5 x 5 pixels; got {height} x {width}.")
        robust = tf.equal(tf.argmax(logits_of(model, x), -1, output_type=tf.int32), y)

        def body(run, x_adv, robust, margin_best):
            found, found_margin = self._single_run(model, x, y, fold_seed(seed, run))
            fooled = robust & (found_margin <= 0.0)
            better = robust & ~fooled & (found_margin < margin_best)
            x_adv = where_samples(fooled | better, found, x_adv)
            return run + 1, x_adv, robust & ~fooled, tf.where(better, found_margin, margin_best)

        _, x_adv, _, _ = tf.while_loop(
            lambda run, _, robust, __: (run < self.restarts) & tf.reduce_any(robust),
            body,
            (tf.constant(0), x, robust, tf.fill(tf.shape(y), np.inf)),
        )
        return x_adv

    def _margin(self, model, x_adv, y) -> tf.Tensor:
        """``z_y - max_{j != y} z_j``: positive while the sample is classified correctly."""
        return -margin(logits_of(model, x_adv), y)

    def _single_run(self, model, x, y, seed):
        """One random search over the batch: the best point and its margin per sample."""
        _, height, width, _ = x.shape
        levels = len(_P_HALVING_POINTS) + 1
        sides = [_side_of_level(k, self.p_init, height, width, self.threat_model) for k in range(levels)]
        if self.threat_model == ThreatModel.LINF:
            x_best = self._linf_start(x, seed)
            propose = self._linf_proposal(tf.constant(sides))
        else:
            x_best = self._l2_start(x, seed)
            propose = self._l2_proposal(sides, height, width)
        margin_best = self._margin(model, x_best, y)
        batch = tf.shape(x)[0]

        def body(i, x_best, margin_best):
            # Only the samples still classified correctly are queried (as in the official code).
            rows = tf.where(margin_best > 0.0)[:, 0]
            level = schedule_level(i, self.queries if self.rescale_schedule else None)
            candidate = propose(
                tf.gather(x, rows),
                tf.gather(x_best, rows),
                level,
                fold_seed(seed, i + 1),
                rows,
                batch,
            )
            candidate_margin = self._margin(model, candidate, tf.gather(y, rows))
            improved = candidate_margin < tf.gather(margin_best, rows)
            updated = tf.boolean_mask(rows, improved)[:, None]
            return (
                i + 1,
                tf.tensor_scatter_nd_update(x_best, updated, tf.boolean_mask(candidate, improved)),
                tf.tensor_scatter_nd_update(margin_best, updated, tf.boolean_mask(candidate_margin, improved)),
            )

        _, x_best, margin_best = tf.while_loop(
            lambda i, _, margin_best: (i < self.queries) & tf.reduce_any(margin_best > 0.0),
            body,
            (tf.constant(0), x_best, margin_best),
        )
        return x_best, margin_best

    def _linf_start(self, x, seed):
        """Vertical stripes: one random +-eps per column and channel."""
        shape = tf.shape(x)
        stripes = _signs(random_uniform(tf.stack([shape[0], 1, shape[2], shape[3]]), seed))
        return tf.clip_by_value(x + self.eps * stripes, 0.0, 1.0)

    def _linf_proposal(self, sides):
        """Builds the L-inf update: one random square per sample set to ``x +- eps``."""

        def propose(x, x_best, level, seed, rows, batch):
            _, height, width, channels = x.shape
            side = tf.gather(sides, level)
            corner = _random_corner(side, height, width, _uniform_rows(seed, batch, [2], rows))
            window = _window_mask(corner, side, height, width)
            signs = _signs(_uniform_rows(fold_seed(seed, 1), batch, [1, 1, channels], rows))
            x_new = x_best + window * 2.0 * self.eps * signs
            x_new = tf.clip_by_value(x_new, x - self.eps, x + self.eps)
            return tf.clip_by_value(x_new, 0.0, 1.0)

        return propose

    def _l2_start(self, x, seed):
        """A grid of ``eta`` patterns of side ``H // 5`` with random signs, scaled to norm eps."""
        _, height, width, channels = x.shape
        batch = tf.shape(x)[0]
        side = height // 5
        margin_start = (height - 5 * side) // 2
        tile_rows = np.arange(height) - margin_start
        tile_cols = np.arange(width) - margin_start
        n_rows, n_cols = height // side, width // side
        row_index, col_index = tile_rows // side, tile_cols // side
        valid = ((tile_rows >= 0) & (row_index < n_rows))[:, None] & ((tile_cols >= 0) & (col_index < n_cols))[None, :]
        tile = np.where(valid, row_index[:, None] * n_cols + col_index[None, :], 0)
        pattern = _eta(side)
        local_rows = np.broadcast_to((tile_rows % side)[:, None], (height, width))
        local_cols = np.broadcast_to((tile_cols % side)[None, :], (height, width))
        upright = np.where(valid, pattern[local_rows, local_cols], 0.0).astype(np.float32)
        transposed = np.where(valid, pattern[local_cols, local_rows], 0.0).astype(np.float32)
        tiles = n_rows * n_cols
        signs = _signs(random_uniform(tf.stack([batch, tiles, channels]), seed))
        flips = random_uniform(tf.stack([batch, tiles]), fold_seed(seed, 1)) > 0.5
        signs = tf.gather(signs, tile.reshape(-1), axis=1)  # [batch, H*W, C]
        flips = tf.gather(flips, tile.reshape(-1), axis=1)  # [batch, H*W]
        values = tf.where(flips, transposed.reshape(-1)[None, :], upright.reshape(-1)[None, :])
        delta = tf.reshape(values[:, :, None] * signs, tf.shape(x))
        delta = delta / (per_sample_l2_norm(delta) + _TINY)
        return tf.clip_by_value(x + self.eps * delta, 0.0, 1.0)

    def _l2_proposal(self, side_list: list[int], height: int, width: int):
        """Builds the L2 update: moves mass from a random window into another one."""
        biggest = max(side_list)
        table = np.zeros([len(side_list), biggest, biggest], np.float32)
        for level, side in enumerate(side_list):
            table[level, :side, :side] = _eta(side)
        tables = tf.constant(table)
        sides = tf.constant(side_list)

        def propose(x, x_best, level, seed, rows, batch):
            channels = x.shape[3]
            side = tf.gather(sides, level)
            corner = _random_corner(side, height, width, _uniform_rows(seed, batch, [2], rows))
            corner_2 = _random_corner(side, height, width, _uniform_rows(fold_seed(seed, 1), batch, [2], rows))
            window = _window_mask(corner, side, height, width)
            window_2 = _window_mask(corner_2, side, height, width)
            flips = _uniform_rows(fold_seed(seed, 2), batch, [], rows) > 0.5
            pattern = _place_pattern(tf.gather(tables, level), corner, flips, height, width) * window
            signs = _signs(_uniform_rows(fold_seed(seed, 3), batch, [1, 1, channels], rows))

            delta = x_best - x
            norm_window = tf.sqrt(tf.reduce_sum(tf.square(delta * window), [1, 2], keepdims=True))
            norm_image = per_sample_l2_norm(delta)
            norm_windows = per_sample_l2_norm(delta * tf.maximum(window, window_2))
            update = pattern * signs + delta * window / (_TINY + norm_window)
            update_norm = tf.sqrt(tf.reduce_sum(tf.square(update), [1, 2], keepdims=True))
            budget = tf.sqrt(tf.maximum(self.eps**2 - tf.square(norm_image), 0.0) / channels + tf.square(norm_windows))
            update = update / (_TINY + update_norm) * budget
            delta = tf.where(window > 0, update, delta * (1.0 - window_2))
            return tf.clip_by_value(x + delta / (per_sample_l2_norm(delta) + _TINY) * self.eps, 0.0, 1.0)

        return propose

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "queries": self.queries,
            "p_init": self.p_init,
            "restarts": self.restarts,
            "rescale_schedule": self.rescale_schedule,
        }
