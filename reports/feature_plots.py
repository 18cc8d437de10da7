"""Draw ``FeatureMaps``: a PNG grid (rows = resolutions, columns = input then each model) and a
GIF that cycles through the resolutions, one row of the grid per frame.

Every panel is its map ideally up-sampled (``sefl.spectral.resample``) to one display size, so
that resolutions compare point for point; each column has one colour scale (2D, with a colour
bar under it) or one y-range (1D line plots, the native samples marked). Beside each feature
panel: that resolution's equivariance error e(x, r) at the block shown. The geometry is fixed
in pixels (``LAYOUTS``), so a grid of R rows and K columns is exactly ``layout.size(R, K)``
and a GIF frame ``layout.size(1, K)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image
from torch import Tensor

from reports.feature_maps import FeatureColumn, FeatureMaps
from sefl.spectral import resample

__all__ = ["DISPLAY_POINTS", "LAYOUTS", "PanelLayout", "render_grid", "write_animation",
           "write_grid"]

DPI = 100
DISPLAY_POINTS = {2: 64, 1: 256}  # the common display size (at least the top resolution)
FRAME_MS = 700
FONT = 7


@dataclass(frozen=True)
class PanelLayout:
    """Pixel geometry of a grid: a ``left`` band of row labels, a ``top`` band of column
    titles, a ``bottom`` band of colour bars, and per column a panel with a ``note`` band
    (the error) to its right; rows are ``gap`` apart."""

    panel_w: int
    panel_h: int
    note: int = 72
    left: int = 46
    top: int = 40
    bottom: int = 34
    gap: int = 8

    def size(self, rows: int, cols: int) -> tuple[int, int]:
        """(width, height) in pixels of a grid of ``rows`` x ``cols`` panels."""
        return (self.left + cols * (self.panel_w + self.note),
                self.top + rows * (self.panel_h + self.gap) + self.bottom)

    def panel_box(self, row: int, col: int) -> tuple[int, int, int, int]:
        """(x0, y0, x1, y1) in pixels, from the top left, of panel (row, col)."""
        x0 = self.left + col * (self.panel_w + self.note)
        y0 = self.top + row * (self.panel_h + self.gap)
        return x0, y0, x0 + self.panel_w, y0 + self.panel_h


LAYOUTS = {2: PanelLayout(panel_w=100, panel_h=100), 1: PanelLayout(panel_w=170, panel_h=64)}


def _display(signal: Tensor, ndim: int, points: int) -> np.ndarray:
    return resample(signal.double(), points, ndim).numpy()


def _limits(arrays: list[np.ndarray]) -> tuple[float, float]:
    lo, hi = min(float(a.min()) for a in arrays), max(float(a.max()) for a in arrays)
    # A constant column (a dead channel) still needs a non-empty range to draw.
    pad = 0.5 if hi - lo < 1e-12 else 0.05 * (hi - lo)
    return lo - pad, hi + pad


def _title(column: FeatureColumn) -> str:
    shown = (f"mean of {column.channels} ch." if column.channel == "mean"
             else f"channel {column.channel} of {column.channels}")
    return f"{column.label}\nblock {column.block}/{column.n_blocks}, {shown}"


def _row_label(r: int, ndim: int) -> str:
    return f"{r}×{r}" if ndim == 2 else f"n={r}"


class _Canvas:
    """A figure whose axes and texts are placed in pixels from the top left."""

    def __init__(self, layout: PanelLayout, rows: int, cols: int) -> None:
        self.width, self.height = layout.size(rows, cols)
        self.figure = Figure(figsize=(self.width / DPI, self.height / DPI), dpi=DPI)
        self.agg = FigureCanvasAgg(self.figure)

    def axes(self, x0: float, y0: float, x1: float, y1: float):
        w, h = self.width, self.height
        return self.figure.add_axes((x0 / w, 1 - y1 / h, (x1 - x0) / w, (y1 - y0) / h))

    def text(self, x: float, y: float, text: str, **style) -> None:
        self.figure.text(x / self.width, 1 - y / self.height, text, fontsize=FONT, **style)

    def pixels(self) -> np.ndarray:
        """The drawn figure, RGB uint8 ``[height, width, 3]``."""
        self.agg.draw()
        return np.asarray(self.agg.buffer_rgba())[..., :3].copy()


def _draw_column(canvas: _Canvas, layout: PanelLayout, maps: FeatureMaps, col: int,
                 title: str, signals: dict[int, Tensor], errors: dict[int, float] | None) -> None:
    ndim, points = maps.ndim, max(DISPLAY_POINTS[maps.ndim], maps.top)
    shown = {r: _display(signals[r], ndim, points) for r in maps.resolutions}
    lo, hi = _limits(list(shown.values()))
    x0, _, x1, _ = layout.panel_box(0, col)
    canvas.text((x0 + x1) / 2, layout.top - 4, title, ha="center", va="bottom")
    image = None
    for row, r in enumerate(maps.resolutions):
        box = layout.panel_box(row, col)
        ax = canvas.axes(*box)
        if ndim == 2:
            image = ax.imshow(shown[r], cmap="gray" if errors is None else "viridis",
                              vmin=lo, vmax=hi, interpolation="nearest")
            ax.set_axis_off()
        else:
            ax.plot(np.arange(points) / points, shown[r], lw=0.8, color="C0")
            samples = signals[r].numpy()
            ax.plot(np.arange(len(samples)) / len(samples), samples, ".", ms=1.5, color="C3")
            ax.set_xlim(0, 1)
            ax.set_ylim(lo, hi)
            ax.set_xticks([])
            ax.set_yticks([])
        if errors is not None:
            note = (f"e={errors[r]:.2e}" if r in errors
                    else "reference" if r == maps.top else "left out")
            canvas.text(box[2] + 4, (box[1] + box[3]) / 2, note, va="center")
    bar_top = canvas.height - layout.bottom + 6
    if ndim == 2:
        cax = canvas.axes(x0, bar_top, x1, bar_top + 7)
        canvas.figure.colorbar(image, cax=cax, orientation="horizontal")
        cax.tick_params(labelsize=FONT - 1, length=2, pad=1)
        cax.locator_params(nbins=3)
    else:
        canvas.text(x0, bar_top, f"y: {lo:.3g} .. {hi:.3g}", va="top")


def render_grid(maps: FeatureMaps) -> np.ndarray:
    """The whole grid, RGB uint8 ``[height, width, 3]`` with
    ``(width, height) = LAYOUTS[maps.ndim].size(len(maps.resolutions), 1 + len(maps.columns))``."""
    layout = LAYOUTS[maps.ndim]
    canvas = _Canvas(layout, len(maps.resolutions), 1 + len(maps.columns))
    for row, r in enumerate(maps.resolutions):
        _, y0, _, y1 = layout.panel_box(row, 0)
        canvas.text(layout.left - 4, (y0 + y1) / 2, _row_label(r, maps.ndim), ha="right",
                    va="center")
    _draw_column(canvas, layout, maps, 0, "input\n(ideal down-scaling)", maps.inputs, None)
    for col, column in enumerate(maps.columns, start=1):
        _draw_column(canvas, layout, maps, col, _title(column), column.maps, column.errors)
    return canvas.pixels()


def write_grid(pixels: np.ndarray, path: Path) -> Path:
    """Save a rendered grid as PNG."""
    Image.fromarray(pixels).save(path)
    return path


def write_animation(pixels: np.ndarray, maps: FeatureMaps, path: Path) -> Path:
    """Save a GIF cycling through the resolutions: frame k is the titles, row k of the grid and
    the colour bars, so every frame is ``layout.size(1, columns)``."""
    layout = LAYOUTS[maps.ndim]
    header, footer = pixels[:layout.top], pixels[pixels.shape[0] - layout.bottom:]
    frames = []
    for row in range(len(maps.resolutions)):
        start = layout.top + row * (layout.panel_h + layout.gap)
        band = pixels[start:start + layout.panel_h + layout.gap]
        frames.append(Image.fromarray(np.concatenate([header, band, footer])))
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=FRAME_MS, loop=0)
    return path
