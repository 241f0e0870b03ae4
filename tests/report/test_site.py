"""The rendered report: the results table (README and index), the offline site, and a real browser.

The browser check drives Debian's headless Chromium over the DevTools protocol with choreographer (which
kaleido already brings; it talks through ``--remote-debugging-pipe``, no network port) and loads every page
from ``file://``.
"""

import asyncio
import base64
import html
import json
import os
import re
import shutil
import signal
import struct
import zlib
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import choreographer
import choreographer.browsers
import nbformat
import pytest

from mnist_knn import paths
from mnist_knn.report import site
from mnist_knn.report.results import load_results

SAMPLE_RESULTS = {
    "02-l2-best-k": {
        "notebook": "02-beta.ipynb",
        "description": "Plain L2 k-NN, best k",
        "error": 0.0309, "ci_low": 0.02774, "ci_high": 0.034405,
        "config": {"k": 3, "metric": "euclidean"},
        "selection": "held-out training writers",
        "also_in": ["04-gamma.ipynb"],
    },
    "01-nearest-mean": {
        "notebook": "01-alpha.ipynb",
        "description": "Nearest mean image | one per class",
        "error": 0.1797, "ci_low": 0.172301, "ci_high": 0.187338,
        "config": {"preprocessing": ["deskew", "blur"], "weights": None},
    },
}
LOADING_TAGS = {"script", "link", "img", "iframe", "source", "embed", "object"}  # tags that fetch their URL
REMOTE = re.compile(r"^(https?:)?//", re.I)


class _LinkParser(HTMLParser):
    """The href and src attributes of the real tags of a page (not text that merely looks like one, such as
    ``href="..."`` inside a highlighted source file)."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.urls = []  # every href and src
        self.loaded = []  # (tag, url) of the URLs a browser fetches while loading the page

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if value is None:
                continue
            if name in ("href", "src"):
                self.urls.append(value)
            if tag in LOADING_TAGS and name in ("href", "src", "data"):
                self.loaded.append((tag, value))


def _parse(page_html):
    parser = _LinkParser()
    parser.feed(page_html)
    parser.close()
    return parser


def _urls(page_html):
    """Every href and src of the tags in ``page_html``, entities decoded."""
    return _parse(page_html).urls


# --- results table --------------------------------------------------------------------------------

def test_results_rows_are_formatted_and_in_notebook_order():
    rows = site.results_rows(SAMPLE_RESULTS)
    assert [r["key"] for r in rows] == ["01-nearest-mean", "02-l2-best-k"]
    assert rows[1]["error"] == "3.09%" and rows[1]["ci"] == "2.77%–3.44%"
    assert rows[1]["config"] == "k = 3; metric = euclidean"
    assert rows[0]["config"] == "preprocessing = deskew, blur; weights = none"
    assert rows[0]["stem"] == "01-alpha" and rows[0]["selection"] == "" and rows[0]["also_in"] == []
    assert rows[1]["selection"] == "held-out training writers" and rows[1]["also_in"] == ["04-gamma"]


def test_readme_block_is_a_markdown_table_with_notebook_links(tmp_path):
    block = site.readme_block(SAMPLE_RESULTS, notebooks_dir=tmp_path)
    lines = block.strip().splitlines()
    assert lines[1] == "| Result | Test error (95% CI) | Configuration | Chosen on | Notebook |"
    assert lines[3] == (
        r"| Nearest mean image \| one per class | 17.97% (17.23%–18.73%) "
        "| preprocessing = deskew, blur; weights = none |  | [01-alpha](notebooks/01-alpha.ipynb) |"
    )
    assert lines[4].endswith(
        "| held-out training writers | [02-beta](notebooks/02-beta.ipynb); also in [04](notebooks/04-gamma.ipynb) |"
    )
    assert block.startswith("\n") and block.endswith("\n")


def test_readme_block_without_results_says_so():
    assert "No results recorded yet" in site.readme_block({})


def test_update_readme_rewrites_only_the_block(tmp_path):
    readme = tmp_path / "README.md"
    before, after = "# Title\n\nIntro.\n\n", "\n\n## Next section\n"
    readme.write_text(f"{before}{site.README_START}\nstale table\n{site.README_END}{after}")
    assert site.update_readme(readme, SAMPLE_RESULTS, notebooks_dir=tmp_path) is True
    text = readme.read_text()
    assert text.startswith(before + site.README_START) and text.endswith(site.README_END + after)
    assert "stale" not in text and "3.09% (2.77%–3.44%)" in text
    assert site.update_readme(readme, SAMPLE_RESULTS, notebooks_dir=tmp_path) is False  # idempotent


def test_update_readme_without_markers_raises(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("# Title\n")
    with pytest.raises(ValueError, match="must contain the lines"):
        site.update_readme(readme, SAMPLE_RESULTS)


def test_readme_table_matches_results():
    if not paths.RESULTS_FILE.exists():
        pytest.skip("results.json does not exist yet: no notebook has recorded a result")
    readme = (paths.PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    block = site.readme_block_in(readme)
    assert block is not None, f"README.md has no {site.README_START} ... {site.README_END} block"
    assert block == site.readme_block(load_results()), (
        "README.md's results table differs from results.json: run `python -m mnist_knn.report.site --readme`"
    )


# --- building a site from a small synthetic project -----------------------------------------------

def _png(width, height):
    """A valid grey PNG of the given size."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    rows = b"".join(b"\x00" + b"\x80" * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def _figure_output(title):
    figure = {"data": [{"type": "bar", "x": ["a", "b"], "y": [1, 2]}], "layout": {"title": {"text": title}}}
    return nbformat.v4.new_output("display_data", data={
        site.PLOTLY_MIME: figure,
        "image/png": base64.b64encode(_png(40, 30)).decode(),
        "text/plain": "Figure()",
    })


@pytest.fixture
def project(tmp_path):
    root = tmp_path / "project"
    (root / "notebooks").mkdir(parents=True)
    (root / "pkg").mkdir()
    (root / "pkg" / "mod.py").write_text('"""A module."""\n\nX = 1\n')
    alpha = nbformat.v4.new_notebook()
    alpha.cells = [
        nbformat.v4.new_markdown_cell("# 01 · Alpha *first*\n\nAsks:\n\n1. Is A true?\n2. Is *B* true?\n\nMore."),
        nbformat.v4.new_markdown_cell("The code is in [pkg/mod.py](../pkg/mod.py#L3); "
                                      "see [Beta](02-beta.ipynb#2.-Section-B)."),
        nbformat.v4.new_code_cell("fig"),
    ]
    alpha.cells[2].outputs = [
        _figure_output("A finding, stated"),
        nbformat.v4.new_output("display_data", data={
            "text/markdown": "Generated: see [the first section](02-beta.ipynb)", "text/plain": ""}),
    ]
    beta = nbformat.v4.new_notebook()
    beta.cells = [nbformat.v4.new_markdown_cell("# 02 · Beta\n\n1. Why?"),
                  nbformat.v4.new_markdown_cell("## 2. Section B\n\nBack to [Alpha](01-alpha.ipynb).")]
    nbformat.write(alpha, root / "notebooks" / "01-alpha.ipynb")
    nbformat.write(beta, root / "notebooks" / "02-beta.ipynb")
    (root / "results.json").write_text(json.dumps(SAMPLE_RESULTS))
    return root


def _build(project, out, results="results.json"):
    return site.build_site(out, notebooks_dir=project / "notebooks", results_path=project / results,
                           project_root=project)


def test_synthetic_site_pages_navigation_and_links(project, tmp_path):
    report = _build(project, tmp_path / "site")
    out = report.out_dir
    assert report.warnings == []
    assert sorted(report.pages) == sorted([
        "01-alpha.html", "02-beta.html", "index.html", "figures/01-alpha-1.html", "code/pkg/mod.py.html"])
    alpha, beta = (out / "01-alpha.html").read_text(), (out / "02-beta.html").read_text()
    # generated navigation
    assert 'href="02-beta.html" rel="next"' in alpha and 'rel="prev"' not in re.sub(r'class="prev"', "", alpha)
    assert 'href="01-alpha.html" rel="prev"' in beta and 'href="index.html"' in beta
    # links rewritten: notebooks to pages (anchors kept), code to its copy (line anchor as pygments names it)
    assert 'href="02-beta.html#2.-Section-B"' in alpha and 'href="02-beta.html"' in alpha
    assert 'href="code/pkg/mod.py.html#L-3"' in alpha and 'id="L-3"' in (out / "code/pkg/mod.py.html").read_text()
    assert ".ipynb" not in "".join(_urls(alpha + beta))
    # the figure: PNG with its title as alt text, and a link to the interactive page
    assert re.search(r'<img[^>]*alt="A finding, stated"', alpha) and 'href="figures/01-alpha-1.html"' in alpha
    figure = (out / "figures/01-alpha-1.html").read_text()
    assert '<script src="../plotly.min.js"></script>' in figure and "Plotly.newPlot" in figure
    assert len(figure) < 100_000  # plotly.js is not embedded in the page
    assert '"showSendToCloud": false' in figure
    assert (out / "plotly.min.js").stat().st_size > 1_000_000


def test_synthetic_index_has_questions_results_and_links(project, tmp_path):
    index = (_build(project, tmp_path / "site").out_dir / "index.html").read_text()
    assert '<a href="01-alpha.html">01 · Alpha <em>first</em></a>' in index
    assert "<li>Is <em>B</em> true?</li>" in index and "More." not in index
    assert "3.09%" in index and "2.77%–3.44%" in index and "k = 3; metric = euclidean" in index
    assert "Nearest mean image | one per class" in html.unescape(index)
    assert index.index("01-alpha.html\">01 · Alpha") < index.index("02-beta.html\">02 · Beta")


def test_index_without_results_file_says_so(project, tmp_path):
    index = (_build(project, tmp_path / "site", results="missing.json").out_dir / "index.html").read_text()
    assert "No results recorded yet" in index and "<table" not in index


def test_unresolved_links_are_reported(project, tmp_path):
    nb = nbformat.read(project / "notebooks" / "02-beta.ipynb", as_version=4)
    nb.cells.append(nbformat.v4.new_markdown_cell("[next](03-gamma.ipynb) and [gone](../pkg/gone.py)"))
    nbformat.write(nb, project / "notebooks" / "02-beta.ipynb")
    warnings = _build(project, tmp_path / "site").warnings
    assert warnings == [
        "02-beta.ipynb: link to a notebook that does not exist (yet): 03-gamma.ipynb",
        "02-beta.ipynb: link to a missing file left as it is: ../pkg/gone.py",
    ]


def test_rebuild_empties_its_own_directory_but_refuses_a_foreign_one(project, tmp_path):
    out = tmp_path / "site"
    _build(project, out)
    (out / "stale.html").write_text("old")
    _build(project, out)
    assert not (out / "stale.html").exists()
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "precious.txt").write_text("keep")
    with pytest.raises(FileExistsError, match="refusing to delete"):
        _build(project, foreign)
    assert (foreign / "precious.txt").read_text() == "keep"


# --- math: TeX in Markdown becomes MathML when the site is built -----------------------------------

def _maths(fragment):
    """The <math> elements of an HTML fragment, as (display, inner MathML)."""
    return re.findall(r'<math display="(\w+)">(.*?)</math>', fragment, flags=re.S)


def test_inline_and_display_math_become_mathml():
    fragment = site.markdown_to_html("Inline $x^2$, then\n\n$$\\sum_{i=1}^n \\sqrt{x_i}$$\n\nand $$a$$ in a line.")
    maths = _maths(fragment)
    assert [display for display, _ in maths] == ["inline", "block", "block"]
    assert "<msup><mi>x</mi><mn>2</mn></msup>" in maths[0][1]
    assert "<msqrt>" in maths[1][1] and "∑" in maths[1][1]
    assert "$" not in fragment and "\\" not in fragment


def test_dollars_that_are_not_math_stay_as_they_are():
    source = (
        "Prices: \\$5 and \\$x\\$, and between $5 and $10, or $ 3 $.\n\n"
        "Code `$x_1$` and `$$y$$`.\n\n"
        "```\n$$a_b$$ and $c*d*e$\n```\n"
    )
    fragment = site.markdown_to_html(source)
    assert "<math" not in fragment
    assert "Prices: $5 and $x$, and between $5 and $10, or $ 3 $." in fragment
    assert "<code>$x_1$</code>" in fragment and "<code>$$y$$</code>" in fragment
    assert "<pre><code>$$a_b$$ and $c*d*e$\n</code></pre>" in fragment


def test_tex_inside_math_is_not_read_as_markdown():
    """Underscores, asterisks and backslashes of a formula reach the TeX converter untouched."""
    fragment = site.markdown_to_html(r"$a_1 * b_2 * c$ and _em $x_i^*$ em_ and $\{x\} \lVert a \rVert$")
    maths = _maths(fragment)
    assert len(maths) == 3
    assert "<msub><mi>a</mi><mn>1</mn></msub><mo>*</mo><msub><mi>b</mi><mn>2</mn></msub><mo>*</mo>" in maths[0][1]
    assert fragment.count("<em>") == 1 and "<em>em <math" in fragment  # the emphasis around the formula only
    assert "<mo>*</mo>" in maths[1][1]
    assert "{" in maths[2][1] and "‖" in maths[2][1] and "\\" not in fragment


def test_text_in_math_is_escaped():
    fragment = site.markdown_to_html(r"$x < y \text{ if a<b & c }$")
    assert "<mo>&lt;</mo>" in fragment and "<mtext>\xa0if\xa0a&lt;b\xa0&amp;\xa0c\xa0</mtext>" in fragment


@pytest.mark.parametrize("formula, reason", [
    (r"\frac{1}{", "NoAvailableTokensError"),
    ("x^", "MissingSuperScriptOrSubscriptError"),
    (r"\foo{x}", r"'\foo' as raw TeX"),  # latex2mathml would print an unknown command as it is
    ("a}", "'}' as raw TeX"),
    (r"\frac{n}", "<mfrac> needs 2 arguments, got 1"),  # latex2mathml would draw a fraction without denominator
])
def test_malformed_formula_fails_naming_where_it_is(formula, reason):
    with pytest.raises(site.MathError) as raised:
        site.markdown_to_html(f"Fine $x$, then ${formula}$.", where="01-alpha.ipynb, cell 3")
    message = str(raised.value)
    assert message.startswith(f"01-alpha.ipynb, cell 3: cannot convert the TeX formula ${formula}$ to MathML")
    assert reason in message
    assert raised.value.formula == formula and raised.value.where == "01-alpha.ipynb, cell 3"


def _add_math(project, markdown_output):
    """Formulas in a Markdown cell, a Markdown output and a Markdown file of the synthetic project."""
    (project / "notes.md").write_text("# Notes\n\nThe norm $\\lVert x \\rVert_2$.\n")
    path = project / "notebooks" / "01-alpha.ipynb"
    nb = nbformat.read(path, as_version=4)
    nb.cells.insert(2, nbformat.v4.new_markdown_cell(
        "Distance $d(a, b) = \\sqrt{\\sum_i (a_i - b_i)^2}$, see [notes](../notes.md):\n\n$$k = 1, \\dots, 20$$"))
    nb.cells[3].outputs.append(nbformat.v4.new_output("display_data", data={
        "text/markdown": markdown_output, "text/plain": ""}))
    nbformat.write(nb, path)


def test_synthetic_site_renders_math_as_mathml(project, tmp_path):
    _add_math(project, "Generated: error $\\propto n^{-1/2}$")
    report = _build(project, tmp_path / "site")
    assert report.warnings == []
    alpha = (report.out_dir / "01-alpha.html").read_text()
    assert [display for display, _ in _maths(alpha)] == ["inline", "block", "inline"]
    assert "<msqrt>" in alpha and "∝" in alpha and "\\sqrt" not in alpha and "\\propto" not in alpha
    notes = (report.out_dir / "code" / "notes.md.html").read_text()
    assert len(_maths(notes)) == 1 and "\\lVert" not in notes


def test_tex_that_stays_text_is_reported(project, tmp_path):
    """A formula the parser does not take as math (here: spaces inside the dollars) would show raw: a warning."""
    path = project / "notebooks" / "01-alpha.ipynb"
    nb = nbformat.read(path, as_version=4)
    nb.cells.insert(2, nbformat.v4.new_markdown_cell("Spaced: $ \\alpha + 1 $."))
    nbformat.write(nb, path)
    assert _build(project, tmp_path / "site").warnings == [
        "01-alpha.ipynb, cell 2: Markdown still shows TeX as text: $ \\alpha + 1 $"]


def test_synthetic_site_fails_on_a_malformed_formula(project, tmp_path):
    _add_math(project, "Generated: $\\frac{n}$")
    with pytest.raises(site.MathError, match=r"^01-alpha\.ipynb, cell 3 \(a Markdown output\): cannot convert "
                                             r"the TeX formula \$\\frac\{n\}\$"):
        _build(project, tmp_path / "site")


# --- the real site, built from the repository's notebooks -----------------------------------------

NOTEBOOKS = sorted(paths.NOTEBOOKS_DIR.glob(site.NOTEBOOK_GLOB))


@pytest.fixture(scope="module")
def real_site(tmp_path_factory):
    if not NOTEBOOKS:
        pytest.skip("no notebooks yet")
    return site.build_site(tmp_path_factory.mktemp("report") / "site")


def _html_files(out):
    return sorted(out.rglob("*.html"))


@pytest.mark.site
def test_every_notebook_has_a_page_and_every_figure_an_interactive_version(real_site):
    out = real_site.out_dir
    for notebook in NOTEBOOKS:
        page = (out / f"{notebook.stem}.html").read_text(encoding="utf-8")
        nb = nbformat.read(notebook, as_version=4)
        n_figures = sum(site.PLOTLY_MIME in o.get("data", {}) for c in nb.cells for o in c.get("outputs", []))
        for n in range(1, n_figures + 1):
            assert f'href="figures/{notebook.stem}-{n}.html"' in page
            assert (out / "figures" / f"{notebook.stem}-{n}.html").exists()
        assert page.count("<figure") == n_figures, "every figure is shown as a PNG"
    assert len(list(out.rglob("plotly.min.js"))) == 1


@pytest.mark.site
def test_no_page_loads_anything_from_the_network(real_site):
    for path in _html_files(real_site.out_dir):
        text = path.read_text(encoding="utf-8")
        loaded = _parse(text).loaded
        remote = [f"<{tag} {url[:100]}>" for tag, url in loaded if REMOTE.match(url)]
        assert not remote, f"{path.name} loads from the network: {remote}"
        assert not [url for _, url in loaded if "cdnjs" in url or "require.js" in url], path.name


# TeX that a page would show raw: a $...$ span holding a TeX command or a sub/superscript, $$, \begin{, \( or \[
RAW_TEX = re.compile(r"\$\$|\$[^$\s][^$\n]*?(\\[A-Za-z]+|[_^])[^$\n]*?\$|\\begin\{|\\\(|\\\[")
NOT_TEXT = re.compile(r"<(pre|code|math|script|style)\b.*?</\1>", re.S | re.I)


def _page_text(page_html):
    """A page's text outside code, formulas, scripts and styles."""
    return html.unescape(re.sub(r"<[^>]+>", " ", NOT_TEXT.sub(" ", page_html)))


def _math_spans(markdown):
    """The formulas $$...$$ and $...$ of Markdown outside code: a plain count, independent of the site's parser."""
    markdown = re.sub(r"^ {0,3}(```|~~~).*?^ {0,3}\1", "", markdown, flags=re.S | re.M)  # fenced code
    markdown = re.sub(r"(`+).+?\1", "", markdown, flags=re.S).replace("\\$", "")  # code spans, escaped dollars
    return re.findall(r"\$\$.+?\$\$|\$[^\s$](?:[^$]*?[^\s$])?\$", markdown, flags=re.S)


def _notebook_markdown(nb):
    """Every Markdown text of a notebook: its Markdown cells and the Markdown outputs of its code cells."""
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            yield cell.source
        for output in cell.get("outputs", []):
            if "text/markdown" in output.get("data", {}):
                yield output["data"]["text/markdown"]


def test_the_raw_tex_check_sees_tex():
    assert _math_spans("$a_1$, `$b$`, \\$5 and $5, ```\n$$c$$\n```\n$$d$$") == ["$a_1$", "$$d$$"]
    assert RAW_TEX.search(_page_text("<p>the norm $\\lVert x \\rVert$</p>"))
    assert RAW_TEX.search(_page_text("<p>error $n^{-1/2}$</p>"))
    assert not RAW_TEX.search(_page_text("<p>$5 and $10, <code>$x_1$</code> <math><mi>x</mi></math></p>"))


@pytest.mark.site
def test_no_page_shows_raw_tex(real_site):
    """Formulas are MathML everywhere: no page shows TeX as text, outside code."""
    problems = []
    for path in _html_files(real_site.out_dir):
        text = _page_text(path.read_text(encoding="utf-8"))
        problems += [f"{path.relative_to(real_site.out_dir)}: {m.group(0)[:80]!r}" for m in RAW_TEX.finditer(text)]
    assert not problems, "pages showing raw TeX:\n  " + "\n  ".join(problems)


@pytest.mark.site
def test_every_formula_of_the_notebooks_is_mathml_on_its_page(real_site):
    with_math = []
    for notebook in NOTEBOOKS:
        formulas = [m for md in _notebook_markdown(nbformat.read(notebook, as_version=4)) for m in _math_spans(md)]
        page = (real_site.out_dir / f"{notebook.stem}.html").read_text(encoding="utf-8")
        assert len(re.findall(r"<math\b", page)) == len(formulas), (notebook.name, formulas)
        if formulas:
            with_math.append(notebook.name)
    assert with_math, "no notebook has a formula: the check above checked nothing"


@pytest.mark.site
def test_site_links_resolve(real_site):
    """Every relative link in the site resolves, except links to notebooks not written yet
    (test_links.py reports those against the notebook that contains them)."""
    out = real_site.out_dir
    existing = {p.stem for p in NOTEBOOKS}
    problems = []
    for path in _html_files(out):
        ids = None
        for url in _urls(path.read_text(encoding="utf-8")):
            if not url or url.startswith("#") or re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:", url):
                continue
            parts = urlsplit(url)
            target = (path.parent / unquote(parts.path)).resolve()
            if re.fullmatch(r"\d\d-.*\.html", target.name) and target.parent == out.resolve() \
                    and target.stem not in existing:
                continue
            if not target.exists():
                problems.append(f"{path.relative_to(out)}: {url}")
            elif parts.fragment and target.suffix == ".html":
                ids = set(re.findall(r'\bid="([^"]+)"', target.read_text(encoding="utf-8")))
                if parts.fragment not in ids and unquote(parts.fragment) not in {unquote(i) for i in ids}:
                    problems.append(f"{path.relative_to(out)}: {url} (no such anchor)")
    assert not problems, "broken links in the site:\n  " + "\n  ".join(problems)


# --- the real site in a real browser --------------------------------------------------------------

def _chromium():
    for candidate in (os.environ.get("MNIST_KNN_CHROMIUM"), "chromium", "chromium-browser",
                      "google-chrome", "google-chrome-stable"):
        if candidate and (found := shutil.which(candidate)):
            return found
    return None


PAGE_REPORT = """(async () => {
  const images = Array.from(document.images);
  await Promise.all(images.map(i => i.decode().catch(() => null)));
  // An explorable figure: choose its last step (slider or menu) as a click would, and report what it shows.
  let chosen = null;
  const gd = document.querySelector(".plotly-graph-div");
  const control = gd && gd.layout && ((gd.layout.sliders || [])[0] || (gd.layout.updatemenus || [])[0]);
  if (control) {
    const steps = control.steps || control.buttons;
    const step = steps[steps.length - 1];
    await Plotly.update(gd, ...step.args);
    chosen = {expected: step.args[0].visible, shown: gd.data.map(t => t.visible),
              expectedTitle: step.args[1] ? step.args[1]["title.text"] : null,
              title: gd.layout.title ? gd.layout.title.text : null,
              drawn: gd.querySelectorAll(".main-svg").length};
  }
  return {
    chosen: chosen,
    title: document.title,
    images: images.map(i => ({src: i.src.slice(0, 60), width: i.naturalWidth, height: i.naturalHeight})),
    figures: document.querySelectorAll("figure.site-figure img").length,
    plots: document.querySelectorAll(".plotly-graph-div .main-svg").length,
    // the controls of an explorable figure, as plotly.js draws them: a slider, a dropdown menu
    controls: document.querySelectorAll(".plotly-graph-div .slider-container, .plotly-graph-div .updatemenu-container").length,
    math: Array.from(document.querySelectorAll("math")).map(m => {
      const box = m.getBoundingClientRect();
      return {text: m.textContent.slice(0, 60), width: box.width, height: box.height,
              mathml: m.namespaceURI === "http://www.w3.org/1998/Math/MathML", display: getComputedStyle(m).display};
    }),
  };
})()"""


def _is_local(url):
    parts = urlsplit(url)
    return parts.scheme in ("file", "data", "about", "blob") or (
        parts.scheme in ("http", "https", "ws") and parts.hostname in ("127.0.0.1", "localhost", "::1"))


class _Chromium(choreographer.browsers.Chromium):
    """Choreographer's Chromium (headless, no sandbox, no GPU, no extensions, ``--remote-debugging-pipe``)
    with this test's extra flags, and without the two flags it adds that loosen ``file://`` security, so that
    the pages are checked as a reader's browser would open them."""

    FLAGS = [
        "--disable-quic", "--disable-background-networking", "--mute-audio", "--hide-scrollbars",
        "--window-size=1280,1024",
        # belt and braces: even if a page asked for the network, no name would resolve
        "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
    ]
    LOOSENING = {"--disable-web-security", "--allow-file-access-from-files"}

    def get_cli(self):
        return [arg for arg in super().get_cli() if arg not in self.LOOSENING] + self.FLAGS


TIMEOUT = 30  # seconds, for every single wait on the browser


async def _send(target, method, params=None):
    reply = await asyncio.wait_for(target.send_command(method, params), TIMEOUT)
    if "error" in reply:
        raise RuntimeError(f"{method}: {reply['error']}")
    return reply["result"]


async def _visit(tab, events, url):
    """Load ``url`` in ``tab``; return the page report and the events that arrived meanwhile."""
    events.clear()
    loaded = tab.subscribe_once("Page.loadEventFired")
    await _send(tab, "Page.navigate", {"url": url})
    try:
        await asyncio.wait_for(loaded, TIMEOUT)
    except TimeoutError:
        raise TimeoutError(f"{url} did not finish loading in {TIMEOUT} s") from None
    reply = await _send(tab, "Runtime.evaluate", {"expression": PAGE_REPORT, "awaitPromise": True,
                                                  "returnByValue": True})
    return reply["result"]["value"], list(events)


async def _close(browser):
    """Close the browser; if that fails or times out, kill its process group (choreographer starts a new one)."""
    try:
        await asyncio.wait_for(browser.close(), TIMEOUT)
    finally:
        if getattr(browser, "subprocess", None) and browser.subprocess.poll() is None:
            os.killpg(browser.subprocess.pid, signal.SIGKILL)
            browser.subprocess.wait(TIMEOUT)


async def _visit_all(executable, user_data_dir, urls):
    browser = choreographer.Browser(executable, browser_cls=_Chromium, enable_extensions=False,
                                    tmp_dir=str(user_data_dir))
    try:
        await asyncio.wait_for(browser.open(), TIMEOUT)
        tab = await asyncio.wait_for(browser.create_tab("about:blank"), TIMEOUT)
        events = []

        async def record(event):
            events.append(event)

        tab.subscribe("*", record)
        for domain in ("Page", "Network", "Runtime", "Log"):
            await _send(tab, f"{domain}.enable")
        return [await _visit(tab, events, url) for url in urls]
    finally:
        await _close(browser)


@pytest.mark.site
@pytest.mark.browser
def test_site_renders_offline_in_chromium(real_site, tmp_path):
    executable = _chromium()
    if executable is None:
        pytest.skip("no Chromium found (install Debian's chromium, or set MNIST_KNN_CHROMIUM)")
    out = real_site.out_dir
    pages = [out / "index.html"] + [p for p in _html_files(out) if p.name != "index.html" or p.parent != out]
    visits = asyncio.run(_visit_all(executable, tmp_path, [p.resolve().as_uri() for p in pages]))
    problems, explorable = [], []
    for path, (page, events) in zip(pages, visits):
        name = path.relative_to(out).as_posix()
        requests = [e["params"]["request"]["url"] for e in events if e["method"] == "Network.requestWillBeSent"]
        errors = [json.dumps(e["params"])[:300] for e in events
                  if e["method"] == "Runtime.exceptionThrown"
                  or (e["method"] == "Log.entryAdded" and e["params"]["entry"]["level"] == "error")
                  or (e["method"] == "Runtime.consoleAPICalled" and e["params"]["type"] == "error")]
        remote = [url[:100] for url in requests if not _is_local(url)]
        if remote:
            problems.append(f"{name}: requests leaving the machine: {remote}")
        if errors:
            problems.append(f"{name}: errors: {errors}")
        empty = [i["src"] for i in page["images"] if not (i["width"] > 0 and i["height"] > 0)]
        if empty:
            problems.append(f"{name}: images with no size: {empty}")
        if not page["title"]:
            problems.append(f"{name}: no title (did it load?)")
        if name.startswith("figures/") and page["plots"] == 0:
            problems.append(f"{name}: plotly drew nothing")
        if name.startswith("figures/") and re.search(r'"(sliders|updatemenus)":', path.read_text()):
            explorable.append(name)
            if page["controls"] == 0:
                problems.append(f"{name}: the figure has a slider or menu, but plotly drew none")
            chosen = page["chosen"]
            if not chosen or chosen["shown"] != chosen["expected"] or not chosen["drawn"] or (
                    chosen["expectedTitle"] is not None and chosen["title"] != chosen["expectedTitle"]):
                problems.append(f"{name}: choosing the last step does not show its traces and title: {chosen}")
        if re.fullmatch(r"\d\d-.*\.html", name):
            n_figures = sum(f.startswith(f"figures/{path.stem}-") for f in real_site.figures)
            if page["figures"] != n_figures:
                problems.append(f"{name}: {page['figures']} figures shown, {n_figures} expected")
        # every formula is drawn by the browser's MathML layout (display "math" or "block math"), with a size
        n_math = len(re.findall(r"<math\b", path.read_text(encoding="utf-8")))
        if len(page["math"]) != n_math:
            problems.append(f"{name}: {len(page['math'])} formulas in the page, {n_math} in its HTML")
        undrawn = [m for m in page["math"]
                   if not (m["mathml"] and "math" in m["display"] and m["width"] > 0 and m["height"] > 0)]
        if undrawn:
            problems.append(f"{name}: formulas not drawn as MathML, or with no size: {undrawn}")
    assert len(explorable) >= 2, f"the report's explorable figures (slider or menu) are missing: {explorable}"
    assert not problems, "\n".join(problems)


def test_markdown_pages_carry_github_heading_anchors():
    """Links into the repository's Markdown files name GitHub's anchors; the site's pages must have them too."""
    from nbconvert.filters.markdown_mistune import markdown2html_mistune

    from mnist_knn.report.site import _github_heading_ids

    body = _github_heading_ids(markdown2html_mistune("# Bibliography\n\n### Keysers2007\n\n## The two commands?\n"))
    ids = set(re.findall(r'\bid="([^"]+)"', body))
    assert {"bibliography", "keysers2007", "the-two-commands"} <= ids
    assert {"Bibliography", "Keysers2007"} <= ids  # nbconvert's own ids stay
