import json
import struct

import numpy as np
import plotly.graph_objects as go
import pytest

from mnist_knn import paths
from mnist_knn.report import plots
from mnist_knn.report.plots import show_one_at_a_time

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def figures_dir(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "FIGURES_DIR", tmp_path / "figures")
    return tmp_path / "figures"


@pytest.fixture(scope="module")
def small_fig():
    return go.Figure(go.Bar(x=["0", "1", "2"], y=[3, 1, 2]), layout=dict(width=300, height=200))


def png_size(data):
    """(width, height) from the IHDR chunk."""
    return struct.unpack(">II", data[16:24])


def png_chunk_types(data):
    types, pos = [], len(PNG_SIGNATURE)
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        types.append(data[pos + 4 : pos + 8])
        pos += 12 + length
    return types


def test_digit_colors_cover_the_ten_digits():
    assert list(plots.DIGIT_COLORS) == plots.DIGIT_ORDER == [str(d) for d in range(10)]
    assert len(set(plots.DIGIT_COLORS.values())) == 10


@pytest.mark.browser  # kaleido exports the PNG with Chromium
def test_save_figure_writes_png_of_layout_size_times_scale(figures_dir, small_fig):
    returned = plots.save_figure(small_fig, "01-test-bar")
    data = (figures_dir / "01-test-bar.png").read_bytes()
    assert returned is small_fig
    assert data.startswith(PNG_SIGNATURE)
    assert png_size(data) == (300 * plots.SAVE_SCALE, 200 * plots.SAVE_SCALE)
    assert png_chunk_types(data)[-1] == b"IEND"


@pytest.mark.browser  # kaleido exports the PNG with Chromium
def test_save_figure_is_byte_stable(figures_dir, small_fig):
    path = figures_dir / "01-test-bar.png"
    plots.save_figure(small_fig, "01-test-bar")
    first = path.read_bytes()
    path.unlink()
    plots.save_figure(small_fig, "01-test-bar")
    assert path.read_bytes() == first


@pytest.mark.browser  # kaleido exports the PNG with Chromium
def test_save_figure_drops_time_and_text_chunks(figures_dir, small_fig):
    plots.save_figure(small_fig, "01-test-bar")
    types = png_chunk_types((figures_dir / "01-test-bar.png").read_bytes())
    assert not {b"tIME", b"tEXt", b"zTXt", b"iTXt"} & set(types)


@pytest.mark.browser  # kaleido exports the PNG with Chromium
def test_save_figure_leaves_no_temporary_file(figures_dir, small_fig):
    plots.save_figure(small_fig, "01-test-bar")
    assert [p.name for p in figures_dir.iterdir()] == ["01-test-bar.png"]


def test_strip_volatile_chunks_removes_time_stamp():
    def chunk(kind, payload):
        return struct.pack(">I", len(payload)) + kind + payload + b"\0\0\0\0"

    ihdr, iend = chunk(b"IHDR", b"\0" * 13), chunk(b"IEND", b"")
    png = PNG_SIGNATURE + ihdr + chunk(b"tIME", b"\x07\xe9\x01\x02\x03\x04\x05") + iend
    assert plots._strip_volatile_chunks(png) == PNG_SIGNATURE + ihdr + iend


@pytest.mark.parametrize(
    "name", ["error-vs-k", "1-error", "01_error", "01-Error", "01-error.png", "01-", "01", ""]
)
def test_save_figure_bad_name_raises(figures_dir, small_fig, name):
    with pytest.raises(ValueError, match="NN-kebab-case"):
        plots.save_figure(small_fig, name)
    assert not figures_dir.exists()


def test_digit_grid_has_one_subplot_and_title_per_image():
    images = np.zeros((23, 28, 28), dtype=np.uint8)
    titles = [f"{i % 10}→{(i + 1) % 10} (d={i})" for i in range(23)]
    fig = plots.digit_grid(images, titles=titles, n_cols=10)
    assert len(fig.data) == 23
    assert [a.text for a in fig.layout.annotations] == titles
    assert {a.font.color for a in fig.layout.annotations} == {plots.TITLE_GREY}  # neutral: red reads as an error
    assert fig.get_subplot(1, 10) is not None and fig.get_subplot(3, 3) is not None  # 3 rows of 10
    with pytest.raises(Exception):
        fig.get_subplot(4, 1)


def test_digit_grid_axes_hidden_equal_aspect_ink_dark():
    fig = plots.digit_grid(np.zeros((3, 28, 28), dtype=np.uint8))
    assert fig.layout.yaxis2.scaleanchor == "x2"
    assert fig.layout.xaxis3.visible is False and fig.layout.yaxis3.autorange == "reversed"
    assert fig.data[0].colorscale[0][1] == "white" and fig.data[0].colorscale[-1][1] == "black"
    assert fig.layout.annotations == ()


def test_digit_grid_accepts_flat_images():
    fig = plots.digit_grid(np.arange(2 * 784).reshape(2, 784) % 256)
    assert np.asarray(fig.data[1].z).shape == (28, 28)


def test_digit_grid_per_image_title_colors():
    fig = plots.digit_grid(np.zeros((2, 4, 4)), titles=["a", "b"], title_color=["green", "red"])
    assert [a.font.color for a in fig.layout.annotations] == ["green", "red"]


def test_digit_grid_wrong_number_of_titles_raises():
    with pytest.raises(ValueError, match="titles has 2 entries; images has 3"):
        plots.digit_grid(np.zeros((3, 28, 28)), titles=["1", "2"])


def test_digit_grid_non_square_flat_images_raise():
    with pytest.raises(ValueError, match="has 780 pixels per image, which is not a square number"):
        plots.digit_grid(np.zeros((3, 780)))


def test_image_heatmap_is_one_reversed_heatmap():
    fig = plots.image_heatmap(np.eye(28) * 255, title="x")
    assert len(fig.data) == 1 and fig.layout.yaxis.autorange == "reversed"
    with pytest.raises(ValueError, match="got shape"):
        plots.image_heatmap(np.zeros((2, 28, 28)))


def test_log_ticks_label_every_tick_in_full():
    from mnist_knn.report.plots import log_ticks

    ticks = log_ticks([2.8, 40.0], steps=(1, 2, 3, 5), suffix="%")
    assert ticks["tickvals"] == [1, 2, 3, 5, 10, 20, 30, 50, 100]
    assert ticks["ticktext"] == ["1%", "2%", "3%", "5%", "10%", "20%", "30%", "50%", "100%"]
    assert len(set(ticks["ticktext"])) == len(ticks["ticktext"])  # no label stands for two values
    sizes = log_ticks([100, 60_000], steps=(1, 3))
    assert sizes["ticktext"][:4] == ["100", "300", "1,000", "3,000"]
    small = log_ticks([0.05, 0.7])
    assert small["ticktext"][:3] == ["0.01", "0.02", "0.05"]


@pytest.mark.parametrize("values, steps", [([0, -1, np.nan], (1,)), ([1, 10], (0.5,)), ([1, 10], (10,)), ([1], ())])
def test_log_ticks_refuse_what_they_cannot_label(values, steps):
    from mnist_knn.report.plots import log_ticks

    with pytest.raises(ValueError):
        log_ticks(values, steps=steps)


# --- show_one_at_a_time: explorable figures as plain figure JSON -------------------------------------

def _three_groups():
    return go.Figure([go.Scatter(y=[i, i + 1]) for i in range(5)])  # groups of 2, 1 and 2 traces


def test_show_one_at_a_time_slider_steps_show_each_group_and_its_title():
    fig = show_one_at_a_time(_three_groups(), [100, 300, 1000], [2, 1, 2], titles=["a", "b", "c"], active=1,
                             prefix="Size: ")
    assert [t.visible for t in fig.data] == [False, False, True, False, False]
    assert fig.layout.title.text == "b"
    (slider,) = fig.layout.sliders
    assert slider.active == 1 and slider.currentvalue.prefix == "Size: "
    assert [s.label for s in slider.steps] == ["100", "300", "1000"]
    assert [s.args[0]["visible"] for s in slider.steps] == [
        [True, True, False, False, False], [False, False, True, False, False], [False, False, False, True, True]]
    assert [s.args[1]["title.text"] for s in slider.steps] == ["a", "b", "c"]
    assert not fig.layout.updatemenus
    json.loads(fig.to_json())  # plain JSON: what nbval compares and the site renders


def test_show_one_at_a_time_dropdown_with_equal_groups_and_no_titles():
    fig = show_one_at_a_time(go.Figure([go.Bar(y=[1]) for _ in range(4)]), ["x", "y"], 2, control="dropdown")
    (menu,) = fig.layout.updatemenus
    assert menu.type == "dropdown" and menu.active == 0 and not fig.layout.sliders
    assert [list(b.args) for b in menu.buttons] == [[{"visible": [True, True, False, False]}],
                                              [{"visible": [False, False, True, True]}]]


@pytest.mark.parametrize("kwargs, message", [
    (dict(labels=["a", "b"], traces_per_choice=[2, 2]), "the groups hold 4 traces"),
    (dict(labels=["a", "b"], traces_per_choice=[2, 1, 2]), "one per label"),
    (dict(labels=["a", "b", "c"], traces_per_choice=[2, 0, 3]), "positive whole number"),
    (dict(labels=["a", "b", "c"], traces_per_choice=[2, 1, 2], titles=["t"]), "titles has 1 entries"),
    (dict(labels=["a", "b", "c"], traces_per_choice=[2, 1, 2], active=3), "active must be between 0 and 2"),
    (dict(labels=["a", "b", "c"], traces_per_choice=[2, 1, 2], active=1.5), "active must be between 0 and 2"),
    (dict(labels=["a", "b", "c"], traces_per_choice=[2, 1.0, 2]), "positive whole number"),
    (dict(labels=["a", "b", "c"], traces_per_choice=["2", 1, 2]), "positive whole number"),
    (dict(labels=["a", "b", "c"], traces_per_choice=[2, 1, 2], control="buttons"), "control must be"),
])
def test_show_one_at_a_time_rejects_inconsistent_groups(kwargs, message):
    fig = _three_groups()
    before = fig.to_json()
    with pytest.raises(ValueError, match=message):
        show_one_at_a_time(fig, **kwargs)
    assert fig.to_json() == before  # checked before anything changes
