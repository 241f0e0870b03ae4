"""Figures: one colour per digit, digit galleries, and the one way figures are saved.

Every notebook calls :func:`setup_notebook` in its first cell and saves figures only through
:func:`save_figure`, which writes ``figures/<name>.png`` with kaleido (headless Chromium).
"""

import math
import os
import re

import numpy as np
import plotly.express as px
import plotly.graph_objects as go
import plotly.io as pio
from plotly.subplots import make_subplots

from .. import paths, validation
from ..store import write_atomically

__all__ = [
    "DIGIT_COLORS",
    "DIGIT_ORDER",
    "INK_COLORSCALE",
    "digit_grid",
    "image_heatmap",
    "log_ticks",
    "save_figure",
    "setup_notebook",
    "show_one_at_a_time",
]

DIGIT_ORDER = [str(d) for d in range(10)]
"""Digits as strings, in order: pass as ``category_orders={"digit": DIGIT_ORDER}``."""

DIGIT_COLORS = dict(zip(map(str, range(10)), px.colors.qualitative.D3))
"""One colour per digit (keys ``"0"`` to ``"9"``), used by every figure."""

INK_COLORSCALE = [[0.0, "white"], [1.0, "black"]]
"""Greyscale with ink dark: pixel value 0 is white paper, 255 is black ink."""

TITLE_GREY = "#444444"
"""Neutral colour of image titles in a gallery: red or green would read as a verdict."""

TEMPLATE = "plotly_white"
WIDTH, HEIGHT = 800, 500  # layout pixels of a figure that sets no size of its own
SAVE_SCALE = 2  # saved PNGs are rendered at twice the layout size (sharp on high-DPI screens)

_NAME_PATTERN = re.compile(r"[0-9]{2}(-[a-z0-9]+)+")
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Ancillary PNG chunks that may carry a time stamp or other text; never needed to show the image.
_VOLATILE_PNG_CHUNKS = {b"tIME", b"tEXt", b"zTXt", b"iTXt"}


def setup_notebook():
    """Configure plotly for a notebook: renderer, template, sizes, and a running image server.

    Sets ``plotly_mimetype+png`` as the renderer (interactive in JupyterLab, a PNG in static
    viewers and in nbval's stored outputs), the ``plotly_white`` template, a default size of
    800 x 500 layout pixels, and starts kaleido's image server once. Calling it again does
    nothing new. Prints nothing.
    """
    pio.renderers.default = "plotly_mimetype+png"
    pio.templates.default = TEMPLATE
    pio.defaults.default_width = WIDTH
    pio.defaults.default_height = HEIGHT
    pio.defaults.default_scale = 1
    _start_image_server()


def _start_image_server():
    """Start kaleido's sync server once, and drop plotly's default HTTP headers.

    Plotly 7 passes ``defaults.headers`` (needed only for OpenStreetMap tiles) to kaleido as
    ``kopts``, which a running server ignores with a ``UserWarning`` on every export.
    """
    import kaleido

    pio.defaults.headers = None
    kaleido.start_sync_server(silence_warnings=True)


def save_figure(fig, name, *, width=None, height=None, scale=SAVE_SCALE):
    """Write ``figures/<name>.png`` byte-stably and return the figure.

    Parameters
    ----------
    fig : plotly.graph_objects.Figure
    name : str
        ``NN-kebab-case`` without extension, starting with the notebook's two-digit
        number, e.g. ``"02-error-vs-k"``.
    width, height : int, optional
        Layout size in pixels; by default the figure's own layout size, else 800 x 500.
    scale : float, default=2
        Pixels per layout pixel in the PNG.

    Returns
    -------
    fig : plotly.graph_objects.Figure
        The same figure, so that a notebook cell can end with ``save_figure(fig, ...)``.

    Raises
    ------
    ValueError
        If ``name`` is not ``NN-kebab-case``.

    Notes
    -----
    The PNG is written to a temporary file and renamed into place, so a failed export never
    leaves a truncated figure. Time-stamp and text chunks are removed, so the same figure
    gives the same bytes on every run; an unchanged file is not rewritten. The first call
    starts kaleido's image server (as :func:`setup_notebook` does) and sets
    ``plotly.io.defaults.headers = None``.
    """
    if not isinstance(name, str) or not _NAME_PATTERN.fullmatch(name):
        raise ValueError(
            "name must be NN-kebab-case without extension, starting with the notebook's "
            f"two-digit number (e.g. '02-error-vs-k'); got {name!r}."
        )
    _start_image_server()
    width = width or fig.layout.width or WIDTH
    height = height or fig.layout.height or HEIGHT
    png = pio.to_image(fig, format="png", width=width, height=height, scale=scale)
    png = _strip_volatile_chunks(png)
    write_atomically(paths.FIGURES_DIR / f"{name}.png", png, skip_unchanged=True)
    return fig


def _strip_volatile_chunks(png):
    """Return the PNG bytes without time-stamp and text chunks. Assumes a valid PNG."""
    if not png.startswith(_PNG_SIGNATURE):
        raise RuntimeError(f"kaleido returned {len(png)} bytes that are not a PNG.")
    out, pos = [_PNG_SIGNATURE], len(_PNG_SIGNATURE)
    while pos < len(png):
        (length,) = np.frombuffer(png[pos : pos + 4], dtype=">u4")
        end = pos + 12 + int(length)
        chunk_type = png[pos + 4 : pos + 8]
        if chunk_type not in _VOLATILE_PNG_CHUNKS:
            out.append(png[pos:end])
        pos = end
    return b"".join(out)


def _heatmap(image, zmin, zmax, colorscale):
    """One image as a heatmap trace, row 0 at the top. Assumes a 2-D array."""
    return go.Heatmap(
        z=image,
        zmin=zmin,
        zmax=zmax,
        colorscale=colorscale,
        showscale=False,
        hovertemplate="row %{y}, column %{x}: %{z}<extra></extra>",
    )


def log_ticks(values, *, steps=(1, 2, 5), suffix="", thousands=True):
    """Ticks for a log axis, every one labelled in full.

    Plotly labels the minor ticks of a log axis with bare digits, so that "3" stands for both 3% and 30%.
    Pass the result to ``fig.update_xaxes(**log_ticks(...))`` (or ``update_yaxes``) instead.

    Parameters
    ----------
    values : array-like
        The values the axis shows (its positive entries set the range).
    steps : sequence of numbers in [1, 10), default=(1, 2, 5)
        The ticks within each decade: (1, 2, 5) gives 1, 2, 5, 10, 20, 50, ...; (1,) one tick a decade.
    suffix : str, default=""
        Appended to every label, e.g. ``"%"``.
    thousands : bool, default=True
        Group thousands with commas ("10,000").

    Returns
    -------
    dict
        ``tickvals`` (from the decade below the smallest value to the one above the largest) and
        ``ticktext``.

    Raises
    ------
    ValueError
        If ``values`` has no positive finite entry, or a step is outside [1, 10).
    """
    values = np.asarray(values, dtype=float).ravel()
    values = values[np.isfinite(values) & (values > 0)]
    if values.size == 0:
        raise ValueError("log_ticks needs at least one positive finite value.")
    steps = sorted(set(float(s) for s in steps))
    if not steps or steps[0] < 1 or steps[-1] >= 10:
        raise ValueError(f"steps must lie in [1, 10); got {steps}.")
    low, high = math.floor(math.log10(values.min())), math.ceil(math.log10(values.max()))
    ticks = [round(step * 10.0**e, 12) for e in range(low, high + 1) for step in steps]
    ticks = [t for t in ticks if t <= 10.0**high]
    text = [(f"{t:,.{max(0, -math.floor(math.log10(t)))}f}" if thousands else f"{t:g}") + suffix for t in ticks]
    return dict(tickvals=ticks, ticktext=text)


def digit_grid(
    images,
    titles=None,
    n_cols=10,
    title_color=TITLE_GREY,
    *,
    cell_size=80,
    zmin=0,
    zmax=255,
    colorscale=INK_COLORSCALE,
    title=None,
):
    """A gallery of digit images as a grid of small heatmaps, ink dark on white.

    Parameters
    ----------
    images : array-like of shape (n_images, height, width) or (n_images, height * width)
        Pixel values, by default on the MNIST scale 0-255. Flat rows must be square images.
    titles : sequence of str of length n_images, optional
        A short title above each image, e.g. its label ``"7"`` or ``"3→5 (d=1234)"``.
    n_cols : int, default=10
        Images per row; the number of rows follows.
    title_color : str or sequence of str, default=TITLE_GREY
        Colour of the image titles: one for all, or one per image. Neutral by default: a red or green
        title reads as a verdict on the digit.
    cell_size : int, default=80
        Layout pixels per grid cell; sets the figure's width and height.
    zmin, zmax : float, default=0, 255
        Pixel values drawn as white and as black.
    colorscale : plotly colorscale, default=INK_COLORSCALE
    title : str, optional
        The figure's title: state the finding.

    Returns
    -------
    fig : plotly.graph_objects.Figure
        ``n_images`` heatmap traces, each in its own subplot, with no axes and equal aspect.

    Raises
    ------
    ValueError
        If the images are not 2-D, or ``titles`` or ``title_color`` has the wrong length,
        or ``n_cols < 1``.
    """
    images = validation.images(images)
    n = len(images)
    if n == 0:
        raise ValueError("images is empty; need at least one image.")
    if n_cols < 1:
        raise ValueError(f"n_cols must be at least 1; got {n_cols}.")
    if titles is not None and len(titles) != n:
        raise ValueError(f"titles has {len(titles)} entries; images has {n}.")
    colors = [title_color] * n if isinstance(title_color, str) else list(title_color)
    if len(colors) != n:
        raise ValueError(f"title_color has {len(colors)} entries; images has {n}.")

    n_cols = min(n_cols, n)
    n_rows = -(-n // n_cols)
    top = 60 if title else 20
    title_space = 18 if titles is not None else 0
    fig = make_subplots(
        rows=n_rows,
        cols=n_cols,
        subplot_titles=None if titles is None else [str(t) for t in titles],
        horizontal_spacing=4 / (cell_size * n_cols) if n_cols > 1 else 0,
        vertical_spacing=(title_space + 4) / ((cell_size + title_space) * n_rows) if n_rows > 1 else 0,
    )
    for i, image in enumerate(images):
        fig.add_trace(_heatmap(image, zmin, zmax, colorscale), row=i // n_cols + 1, col=i % n_cols + 1)
    fig.update_xaxes(visible=False, constrain="domain")
    fig.update_yaxes(visible=False, autorange="reversed", constrain="domain")
    for i in range(n):
        suffix = "" if i == 0 else str(i + 1)
        fig.layout[f"yaxis{suffix}"].scaleanchor = f"x{suffix}"
    for annotation, color in zip(fig.layout.annotations, colors):
        annotation.font = dict(color=color, size=12)
    fig.update_layout(
        width=cell_size * n_cols + 40,
        height=(cell_size + title_space) * n_rows + top + 10,
        margin=dict(l=20, r=20, t=top, b=10),
        title=title,
    )
    return fig


def image_heatmap(
    image, *, title=None, zmin=0, zmax=255, colorscale=INK_COLORSCALE, colorbar_title="Pixel value", size=400
):
    """One image as a large heatmap with pixel coordinates, ink dark on white.

    Parameters
    ----------
    image : array-like of shape (height, width)
    title : str, optional
    zmin, zmax : float, default=0, 255
        Pixel values drawn as white and as black.
    colorscale : plotly colorscale, default=INK_COLORSCALE
    colorbar_title : str, default="Pixel value"
    size : int, default=400
        Figure width and height in layout pixels.

    Returns
    -------
    fig : plotly.graph_objects.Figure

    Raises
    ------
    ValueError
        If ``image`` is not 2-D.
    """
    image = np.asarray(image)
    if image.ndim != 2:
        raise ValueError(f"image must have shape (height, width); got shape {image.shape}.")
    fig = go.Figure(_heatmap(image, zmin, zmax, colorscale))
    fig.update_traces(showscale=True, colorbar=dict(title=colorbar_title, thickness=12))
    fig.update_xaxes(title="Column", constrain="domain")
    fig.update_yaxes(title="Row", autorange="reversed", scaleanchor="x", constrain="domain")
    fig.update_layout(
        width=size + 100, height=size, title=title, margin=dict(l=60, r=20, t=50 if title else 20, b=50)
    )
    return fig


def show_one_at_a_time(fig, labels, traces_per_choice, *, titles=None, control="slider", active=0, prefix=""):
    """Show one group of a figure's traces at a time, chosen with a slider or a dropdown menu.

    The figure stays plain figure JSON: no callback, no kernel. The choice works wherever plotly.js runs
    (JupyterLab, the site's offline figure pages), the notebook's stored output is deterministic, and the
    static image shows the ``active`` choice.

    Parameters
    ----------
    fig : plotly.graph_objects.Figure
        Its traces in groups, in the order of ``labels``: the first ``traces_per_choice[0]`` traces belong to
        ``labels[0]``, the next ``traces_per_choice[1]`` to ``labels[1]``, and so on.
    labels : sequence of str
        The name of each choice, shown on the slider or in the menu.
    traces_per_choice : int or sequence of int
        How many traces each choice has: one number for all, or one per choice.
    titles : sequence of str, optional
        The figure's title for each choice; by default the title does not change.
    control : {"slider", "dropdown"}, default="slider"
        A slider under the plot (for an ordered choice) or a menu above it (for a set of cases).
    active : int, default=0
        The choice shown first, and in the static image.
    prefix : str, default=""
        Text before the current choice, e.g. ``"Training digits: "``.

    Returns
    -------
    fig : plotly.graph_objects.Figure
        The same figure, changed in place.

    Raises
    ------
    ValueError
        If the groups do not add up to the figure's traces, ``titles`` has the wrong length, ``active`` is out
        of range, or ``control`` is unknown.

    Examples
    --------
    >>> fig = go.Figure([go.Bar(y=[1, 2]), go.Bar(y=[2, 1]), go.Scatter(y=[1, 1])])
    >>> fig = show_one_at_a_time(fig, ["a", "b"], [2, 1], control="dropdown")
    >>> [trace.visible for trace in fig.data]
    [True, True, False]
    >>> fig.layout.updatemenus[0].buttons[1].args[0]
    {'visible': [False, False, True]}
    """
    labels = [str(label) for label in labels]
    n_choices = len(labels)
    counts = [traces_per_choice] * n_choices if np.ndim(traces_per_choice) == 0 else list(traces_per_choice)
    if len(counts) != n_choices or not all(isinstance(c, (int, np.integer)) and c >= 1 for c in counts):
        raise ValueError(f"traces_per_choice must be a positive whole number, or one per label ({n_choices}); "
                         f"got {traces_per_choice!r}.")
    if sum(counts) != len(fig.data):
        raise ValueError(f"the groups hold {sum(counts)} traces ({counts}); the figure has {len(fig.data)}.")
    if titles is not None and len(titles) != n_choices:
        raise ValueError(f"titles has {len(titles)} entries; labels has {n_choices}.")
    if not isinstance(active, (int, np.integer)) or not 0 <= active < n_choices:
        raise ValueError(f"active must be between 0 and {n_choices - 1}; got {active}.")
    if control not in ("slider", "dropdown"):
        raise ValueError(f"control must be 'slider' or 'dropdown'; got {control!r}.")

    owner = np.repeat(np.arange(n_choices), counts)
    for trace, choice in zip(fig.data, owner):
        trace.visible = bool(choice == active)
    steps = []
    for i, label in enumerate(labels):
        args = [{"visible": (owner == i).tolist()}]
        if titles is not None:
            args.append({"title.text": titles[i]})
        steps.append(dict(method="update", label=label, args=args))
    if titles is not None:
        fig.update_layout(title_text=titles[active])
    if control == "slider":
        fig.update_layout(sliders=[dict(active=active, currentvalue=dict(prefix=prefix), pad=dict(t=50),
                                        steps=steps)])
    else:
        if prefix:  # a menu has no caption of its own: write the prefix beside it
            fig.add_annotation(text=prefix, x=0, xref="paper", xanchor="right", y=1.0, yref="paper",
                               yanchor="bottom", showarrow=False)
        fig.update_layout(updatemenus=[dict(type="dropdown", active=active, buttons=steps, x=0, xanchor="left",
                                            y=1.0, yanchor="bottom", pad=dict(b=6))])
    return fig
