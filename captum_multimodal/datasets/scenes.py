"""Synthetic scenes: three or four coloured shapes on a dark background, with masks.

Each colour and each shape appears at most once per scene, so a colour or a shape
names one object; every object comes with its pixel mask.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

COLORS: dict[str, tuple[float, float, float]] = {
    "red": (0.90, 0.12, 0.12),
    "green": (0.12, 0.78, 0.18),
    "blue": (0.16, 0.32, 0.95),
    "yellow": (0.95, 0.88, 0.12),
    "magenta": (0.88, 0.14, 0.86),
    "cyan": (0.12, 0.86, 0.90),
}
"""Object colours and their RGB values in [0, 1]."""

SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "cross")
"""Object shapes."""

SIZES: dict[str, float] = {"small": 5.0, "large": 8.5}
"""Object sizes and their radius in pixels (64-pixel images)."""


@dataclasses.dataclass(frozen=True)
class SceneObject:
    """One shape in a scene: its name, colour, size and centre in pixels (x, y).

    Examples:
        >>> SceneObject("circle", "red", "small", (10.0, 12.0)).color
        'red'
    """

    shape: str
    color: str
    size: str
    center: tuple[float, float]


def shape_mask(shape: str, size: str, center: tuple[float, float], image_size: int) -> np.ndarray:
    """Boolean (image_size, image_size) mask of one shape.

    Examples:
        >>> int(shape_mask("square", "small", (8.0, 8.0), 16).sum()) > 0
        True
    """
    radius = SIZES[size]
    ys, xs = np.mgrid[0:image_size, 0:image_size].astype(np.float64) + 0.5
    dx, dy = xs - center[0], ys - center[1]
    if shape == "circle":
        return dx**2 + dy**2 <= radius**2
    if shape == "square":
        return (np.abs(dx) <= 0.85 * radius) & (np.abs(dy) <= 0.85 * radius)
    if shape == "triangle":
        return (dy >= -radius) & (dy <= radius) & (np.abs(dx) <= (dy + radius) / 2)
    if shape == "cross":
        arm = radius / 3
        return ((np.abs(dx) <= arm) & (np.abs(dy) <= radius)) | (
            (np.abs(dy) <= arm) & (np.abs(dx) <= radius)
        )
    raise ValueError(f"shape must be one of {SHAPES}, got {shape!r}")


def sample_scene(rng: np.random.Generator, image_size: int = 64) -> list[SceneObject]:
    """Draws three or four objects with distinct shapes and colours in distinct grid cells.

    Examples:
        >>> objects = sample_scene(np.random.default_rng(0))
        >>> 3 <= len(objects) <= 4, len({o.shape for o in objects}) == len(objects)
        (True, True)
    """
    grid = 3
    cell = image_size / grid
    n_objects = int(rng.integers(3, 5))
    shapes = rng.choice(len(SHAPES), n_objects, replace=False)
    colors = rng.choice(len(COLORS), n_objects, replace=False)
    cells = rng.choice(grid * grid, n_objects, replace=False)
    objects = []
    for shape_i, color_i, cell_i in zip(shapes, colors, cells, strict=True):
        size = ("small", "large")[int(rng.integers(2))]
        slack = max(cell / 2 - SIZES[size] - 1, 0.0)
        row, col = divmod(int(cell_i), grid)
        cx = (col + 0.5) * cell + rng.uniform(-slack, slack)
        cy = (row + 0.5) * cell + rng.uniform(-slack, slack)
        color = list(COLORS)[int(color_i)]
        objects.append(SceneObject(SHAPES[int(shape_i)], color, size, (cx, cy)))
    return objects


def render_scene(
    objects: Sequence[SceneObject], image_size: int, rng: np.random.Generator
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Renders objects on a dark, slightly noisy background.

    Returns:
        The image as float32 (3, H, W) in [0, 1] and one boolean (H, W) mask per object.

    Examples:
        >>> rng = np.random.default_rng(0)
        >>> image, masks = render_scene(sample_scene(rng), 64, rng)
        >>> image.shape, len(masks) >= 3
        ((3, 64, 64), True)
    """
    image = 0.1 + 0.04 * rng.random((3, image_size, image_size))
    masks = []
    for obj in objects:
        mask = shape_mask(obj.shape, obj.size, obj.center, image_size)
        image[:, mask] = np.asarray(COLORS[obj.color])[:, None]
        masks.append(mask)
    return image.astype(np.float32), masks
