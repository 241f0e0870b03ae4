"""The rendered report: an offline HTML site of the executed notebooks, and the README's results table.

Run ``python -m mnist_knn.report.site`` (``make site``) to build ``site/`` and refresh the README's results
block; ``python -m mnist_knn.report.site --readme`` refreshes only the README. Nothing is executed: the
notebooks are rendered with the outputs they carry.

The site works from ``file://`` without a network: ``index.html`` (the questions of every notebook and
the headline results from ``results.json``), one page per notebook (``NN-slug.html``) with generated
previous / index / next navigation, figures as the PNGs stored in the notebooks, and for each figure an
interactive page ``figures/<page>-<n>.html`` that loads the one copy of ``plotly.min.js`` in the site.
Links between notebooks (``02-x.ipynb#Section``) point to the notebook pages, and links to files of the
repository (``../mnist_knn/vote.py``) to syntax-highlighted copies in ``site/code/``.

TeX math in Markdown (cells, Markdown outputs, the repository's ``.md`` pages), inline ``$...$`` and display
``$$...$$``, is converted to MathML when the site is built (:func:`markdown_to_html`), which browsers draw
natively: no script, no font or CDN to fetch. A formula that cannot be converted stops the build, naming the
notebook, the cell and the formula.
"""

import argparse
import functools
import html
import re
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

from .. import paths
from .results import load_results

__all__ = [
    "README_END",
    "README_START",
    "build_site",
    "notebook_pages",
    "readme_block",
    "results_rows",
    "update_readme",
]

README_START = "<!-- results:start -->"
README_END = "<!-- results:end -->"
SITE_TITLE = "k-NN on MNIST"
SITE_DESCRIPTION = (
    "How useful is k-nearest-neighbours for handwritten digits? A measured report on MNIST, "
    "one question per notebook."
)
# plotly.js buttons that would send the figure's data to plotly's servers, or link to them
OFFLINE_PLOTLY_CONFIG = {"showSendToCloud": False, "displaylogo": False}
NOTEBOOK_GLOB = "[0-9][0-9]-*.ipynb"
PLOTLY_MIME = "application/vnd.plotly.v1+json"
TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
MARKER_FILE = ".mnist-knn-site"  # marks a directory this module built, so a rebuild may empty it
TEXT_SUFFIXES = {
    ".py", ".md", ".txt", ".toml", ".cfg", ".ini", ".yml", ".yaml", ".json", ".csv", ".sh", ".j2", ".css",
}
TEXT_NAMES = {"Makefile", "LICENSE", "run"}
_URL_ATTRIBUTE = re.compile(r'\b(href|src)="([^"]*)"')
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
_TAG = re.compile(r"<[^>]+>")


# ----------------------------------------------------------------------------------------------
# Notebooks
# ----------------------------------------------------------------------------------------------

@dataclass
class NotebookPage:
    """One notebook and the site page made from it."""

    path: Path
    title: str  # the `#` title as Markdown, e.g. "01 · A tour of MNIST"
    questions: str  # the numbered list of questions under the title, as Markdown ("" if none)

    @property
    def stem(self):
        return self.path.stem

    @property
    def html_name(self):
        return f"{self.stem}.html"

    @property
    def title_text(self):
        """The title as plain text (Markdown emphasis and code marks removed)."""
        return html.unescape(_TAG.sub("", _inline_markdown(self.title, where=f"{self.path.name} (title)")))


def notebook_pages(notebooks_dir=None):
    """The numbered notebooks ``NN-*.ipynb`` in order, with their titles and questions.

    Parameters
    ----------
    notebooks_dir : path-like, optional
        Default ``notebooks/`` of the project.

    Returns
    -------
    list of NotebookPage
    """
    import nbformat

    pages = []
    for path in sorted(Path(notebooks_dir or paths.NOTEBOOKS_DIR).glob(NOTEBOOK_GLOB)):
        nb = nbformat.read(path, as_version=4)
        first = next((c.source for c in nb.cells if c.cell_type == "markdown"), "")
        title, questions = _title_and_questions(first)
        pages.append(NotebookPage(path=path, title=title or path.stem, questions=questions))
    return pages


def _title_and_questions(source):
    """The ``# `` title line and the first numbered list of a notebook's first Markdown cell."""
    lines = source.splitlines()
    title = next((line[2:].strip() for line in lines if line.startswith("# ")), "")
    questions, in_list = [], False
    for line in lines:
        if re.match(r"\s{0,3}\d+[.)]\s", line):
            in_list = True
        elif in_list and not line.strip():
            break
        if in_list:
            questions.append(line)
    return title, "\n".join(questions)


# ----------------------------------------------------------------------------------------------
# Results: the table of the README and of the index page
# ----------------------------------------------------------------------------------------------

def _percent(x):
    return f"{100 * float(x):.2f}%"


def _config_text(config):
    parts = []
    for key, value in (config or {}).items():
        if isinstance(value, (list, tuple)):
            value = ", ".join(map(str, value))
        elif isinstance(value, bool):
            value = "yes" if value else "no"
        elif value is None:
            value = "none"
        parts.append(f"{key.replace('_', ' ')} = {value}")
    return "; ".join(parts) if parts else "-"


def _notebook_stem(name):
    """``"02-x.ipynb"``, ``"notebooks/02-x.ipynb"`` or ``"02-x"`` -> ``"02-x"``."""
    name = Path(str(name)).name
    return name[: -len(".ipynb")] if name.endswith(".ipynb") else name


def results_rows(results):
    """The recorded results as table rows, in notebook order, formatted for display.

    Parameters
    ----------
    results : dict
        ``{key: {notebook, description, error, ci_low, ci_high, config}}`` as in ``results.json``
        (errors as fractions).

    Returns
    -------
    list of dict
        Keys ``key``, ``description``, ``error`` (``"3.09%"``), ``ci`` (``"2.77%–3.45%"``),
        ``config`` (``"k = 3; metric = euclidean"``), ``selection`` (how it was chosen, ``""`` if not
        recorded), ``stem`` (the notebook's file stem) and ``also_in`` (stems of notebooks that quote it).
    """
    rows = []
    for key, entry in results.items():
        rows.append({
            "key": key,
            "description": str(entry.get("description", key)),
            "error": _percent(entry["error"]),
            "ci": f"{_percent(entry['ci_low'])}–{_percent(entry['ci_high'])}",
            "config": _config_text(entry.get("config")),
            "selection": str(entry.get("selection", "")),
            "stem": _notebook_stem(entry.get("notebook", "")),
            "also_in": [_notebook_stem(name) for name in entry.get("also_in", ())],
        })
    return sorted(rows, key=lambda row: (row["stem"], row["key"]))


def _md_cell(text):
    return str(text).replace("|", "\\|").replace("\n", " ")


def readme_block(results, notebooks_dir=None):
    """The Markdown between the README's results markers, generated from ``results``.

    Parameters
    ----------
    results : dict
        As returned by :func:`mnist_knn.report.results.load_results`; may be empty.
    notebooks_dir : path-like, optional
        Where to look up the notebooks' titles for the links (default ``notebooks/``).

    Returns
    -------
    str
        Starts and ends with a newline, so that the markers stay on lines of their own.
    """
    note = "<!-- Generated from results.json by `python -m mnist_knn.report.site --readme`; do not edit by hand. -->"
    rows = results_rows(results)
    if not rows:
        return f"\n{note}\n_No results recorded yet: `make report` runs the notebooks, which write them._\n"
    titles = {page.stem: page.title_text for page in notebook_pages(notebooks_dir)}
    lines = [
        note,
        "| Result | Test error (95% CI) | Configuration | Chosen on | Notebook |",
        "|---|---|---|---|---|",
    ]
    for row in rows:
        label = titles.get(row["stem"], row["stem"])
        notebook = f"[{_md_cell(label)}](notebooks/{quote(row['stem'])}.ipynb)"
        if row["also_in"]:
            notebook += "; also in " + ", ".join(
                f"[{stem[:2]}](notebooks/{quote(stem)}.ipynb)" for stem in row["also_in"]
            )
        lines.append(
            f"| {_md_cell(row['description'])} | {row['error']} ({row['ci']}) | {_md_cell(row['config'])} "
            f"| {_md_cell(row['selection'])} | {notebook} |"
        )
    return "\n" + "\n".join(lines) + "\n"


def update_readme(readme=None, results=None, notebooks_dir=None):
    """Rewrite the block between ``README_START`` and ``README_END`` in the README.

    Parameters
    ----------
    readme : path-like, optional
        Default ``README.md`` of the project.
    results : dict, optional
        Default: the project's ``results.json`` (empty if it does not exist).
    notebooks_dir : path-like, optional

    Returns
    -------
    bool
        Whether the file changed.

    Raises
    ------
    ValueError
        If the README does not contain both markers, in order.
    """
    readme = Path(readme or paths.PROJECT_ROOT / "README.md")
    text = readme.read_text(encoding="utf-8")
    start, end = text.find(README_START), text.find(README_END)
    if start < 0 or end < start:
        raise ValueError(
            f"{readme} must contain the lines {README_START} and {README_END} (in this order); "
            "the results table is generated between them."
        )
    results = load_results() if results is None else results
    new = text[: start + len(README_START)] + readme_block(results, notebooks_dir) + text[end:]
    if new == text:
        return False
    readme.write_text(new, encoding="utf-8")
    return True


def readme_block_in(text):
    """The text between the results markers of a README (``None`` if the markers are missing)."""
    start, end = text.find(README_START), text.find(README_END)
    if start < 0 or end < start:
        return None
    return text[start + len(README_START) : end]


# ----------------------------------------------------------------------------------------------
# Math: TeX in Markdown, converted to MathML when the site is built
# ----------------------------------------------------------------------------------------------

class MathError(ValueError):
    """A TeX formula in the report's Markdown that cannot be converted to MathML.

    Attributes ``formula`` (the TeX, without its dollars), ``display`` (``$$...$$``), ``reason`` and ``where``
    (the notebook and cell, or the file, ``None`` if not known).
    """

    def __init__(self, formula, display, reason, where=None):
        self.formula, self.display, self.reason, self.where = formula, display, reason, where
        dollars = "$$" if display else "$"
        place = f"{where}: " if where else ""
        super().__init__(f"{place}cannot convert the TeX formula {dollars}{formula}{dollars} to MathML: {reason}")

    def located(self, where):
        """The same error, naming where the formula is (unless it already does)."""
        return self if self.where or not where else MathError(self.formula, self.display, self.reason, where)


# latex2mathml writes a command it does not know, or a brace or alignment mark it could not place, as the text
# of an <mi> or <mo>, where it would show up as raw TeX: such a formula is refused like a syntax error.
_RAW_TEX_TOKENS = {"{", "}", "&", "$", "#"}
# Operators that TeX sets without space around them (ordinary symbols), while MathML's operator dictionary spaces
# them out in the middle of a formula: the bars of |a - b| and ||a||, the slash of 1/p.
_UNSPACED_OPERATORS = {"/", "|", "\u2016"}
# How many arguments a MathML layout element takes: latex2mathml builds \frac{n} (no denominator) as an <mfrac>
# with one child, which a browser draws as nothing useful.
_ARITY = {"mfrac": 2, "msub": 2, "msup": 2, "msubsup": 3, "munder": 2, "mover": 2, "munderover": 3, "mroot": 2}
_CHAR_REF = re.compile(r"&#x([0-9A-Fa-f]+);")


def tex_to_mathml(tex, display=False):
    r"""One TeX formula as a MathML ``<math>`` element, for a browser to draw (MathML Core, no script).

    Parameters
    ----------
    tex : str
        The formula without its dollars, e.g. ``r"\sum_i x_i^2"``.
    display : bool
        ``True`` for display math (``$$...$$``, ``display="block"``), ``False`` for inline math.

    Returns
    -------
    str
        The ``<math>`` element as HTML, its text properly escaped.

    Raises
    ------
    MathError
        If latex2mathml cannot parse the formula, or leaves part of it as raw TeX (an unknown command, an
        unbalanced brace).

    Examples
    --------
    >>> tex_to_mathml("x^2")
    '<math display="inline"><mrow><msup><mi>x</mi><mn>2</mn></msup></mrow></math>'
    >>> tex_to_mathml(r"\frac{1}{")
    Traceback (most recent call last):
    ...
    mnist_knn.report.site.MathError: cannot convert the TeX formula $\frac{1}{$ to MathML: NoAvailableTokensError
    """
    from xml.etree.ElementTree import tostring

    from latex2mathml.converter import convert_to_element

    try:
        math = convert_to_element(tex, display="block" if display else "inline")
    except Exception as error:  # latex2mathml's own exception classes, and a few built-in ones on bad input
        reason = type(error).__name__ + (f": {error}" if str(error) else "")
        raise MathError(tex, display, reason) from None
    # HTML needs no namespace on <math>, and with one, nbconvert's heading anchors (which re-serialise the
    # heading with ElementTree) would rename every element "ns0:..."
    math.attrib.pop("xmlns", None)
    for element in math.iter():
        text = element.text or ""
        if element.tag in ("mi", "mo", "mn") and (text.startswith("\\") or text in _RAW_TEX_TOKENS):
            reason = f"latex2mathml leaves '{text}' as raw TeX (an unknown command or a misplaced mark)"
            raise MathError(tex, display, reason)
        if element.tag in _ARITY and len(element) != _ARITY[element.tag]:
            reason = f"<{element.tag}> needs {_ARITY[element.tag]} arguments, got {len(element)} (one missing?)"
            raise MathError(tex, display, reason)
        # latex2mathml stores symbols as character references in the text, and its own serialiser then
        # unescapes everything (so a "<" in \text{} would open a tag): decode the references here and let
        # ElementTree escape the text.
        for attribute in ("text", "tail"):
            value = getattr(element, attribute)
            if value and "&#x" in value:
                setattr(element, attribute, _CHAR_REF.sub(lambda m: chr(int(m.group(1), 16)), value))
        if element.tag == "mo" and element.text in _UNSPACED_OPERATORS and element.get("fence") != "true":
            element.set("lspace", "0")
            element.set("rspace", "0")
    return tostring(math, encoding="unicode")


@functools.cache
def _math_markdown_classes():
    """nbconvert's Markdown parser and renderer, adapted for MathML (classes built on first use, as nbconvert is
    imported only when needed)."""
    from nbconvert.filters.markdown_mistune import IPythonRenderer, MathInlineParser

    class InlineParser(MathInlineParser):
        r"""nbconvert's math rules, with pandoc's stricter rule for ``$...$``.

        nbconvert takes any two dollars of a paragraph as inline math, so "between $5 and $10" would lose its
        prices. Here, as in pandoc, the opening ``$`` is followed by a non-space, the closing ``$`` preceded by
        a non-space and not followed by a digit; ``\$`` is a dollar, in and out of math.
        """

        SPECIFICATION = {
            **MathInlineParser.SPECIFICATION,
            "inline_math_tex":
                r"(?s:(?<![$\\])\$(?![\s$])(?P<math_inline_tex>(?:\\.|[^\\$])+?)(?<!\s)\$(?![$\d]))",
        }

    class MathMLRenderer(IPythonRenderer):
        """nbconvert's renderer, drawing math tokens as MathML instead of passing their TeX on to MathJax."""

        def inline_math(self, body):
            return tex_to_mathml(body)

        def block_math(self, body):
            return tex_to_mathml(body, display=True)

        def latex_environment(self, name, body):
            return tex_to_mathml(f"\\begin{{{name}}}{body}\\end{{{name}}}", display=True)

    return InlineParser, MathMLRenderer


def markdown_to_html(source, where=None, **options):
    r"""Markdown to HTML as nbconvert renders it, with every TeX formula converted to MathML.

    nbconvert's Markdown parser (mistune with nbconvert's math rules) already keeps a formula whole: it reads
    ``$$...$$``, ``$...$``, ``\(...\)``, ``\[...\]`` and ``\begin{env}...\end{env}`` as one token each, so
    the underscores, asterisks and backslashes of the TeX never reach the emphasis and escape rules, while
    dollars in code spans and code blocks stay code and ``\$`` is a dollar. Only two things change here: the
    math tokens are rendered as MathML (:func:`tex_to_mathml`), and ``$...$`` follows pandoc's rule, so that
    dollars of prices stay text.

    Parameters
    ----------
    source : str
        Markdown.
    where : str, optional
        Where the Markdown comes from (``"01-data-tour.ipynb, cell 6"``), named by the error.
    **options
        Passed to nbconvert's ``IPythonRenderer`` (attachments, path, anchor links, lexer options).

    Returns
    -------
    str

    Raises
    ------
    MathError
        If a formula cannot be converted; the message names ``where`` and the formula.

    Examples
    --------
    >>> html_ = markdown_to_html(r"Costs \$5, or `$x$`; $a_1 * b_2$ and $$\sqrt{2}$$")
    >>> html_.count("<math"), 'display="block"' in html_, "<em>" in html_, "<code>$x$</code>" in html_
    (2, True, False, True)
    """
    from nbconvert.filters.markdown_mistune import MarkdownWithMath

    parser_class, renderer_class = _math_markdown_classes()
    renderer = renderer_class(escape=False, **options)
    try:
        return MarkdownWithMath(renderer=renderer, inline=parser_class(hard_wrap=False)).render(source)
    except MathError as error:
        raise error.located(where) from None


# TeX that a rendered page shows as text: a $...$ span holding a TeX command, $$, \(, \[ or \begin{...}
_LEFTOVER_TEX = re.compile(r"\$\$|\$[^$\n]*\\[A-Za-z]+[^$\n]*\$|\\\(|\\\[|\\begin\{")
_CODE_OR_MATH = re.compile(r"<(pre|code|math|script|style)\b.*?</\1>", re.S | re.I)


def _leftover_tex(fragment):
    """Spans of an HTML fragment's text, outside code and math, that look like TeX a reader would see raw."""
    text = html.unescape(_TAG.sub(" ", _CODE_OR_MATH.sub(" ", fragment)))
    return [match.group(0) for match in _LEFTOVER_TEX.finditer(text)]


# ----------------------------------------------------------------------------------------------
# The site
# ----------------------------------------------------------------------------------------------

@dataclass
class SiteBuild:
    """What a build wrote, and what it could not resolve."""

    out_dir: Path
    pages: list = field(default_factory=list)  # site-relative paths of the HTML pages written
    figures: list = field(default_factory=list)  # site-relative paths of the interactive figure pages
    warnings: list = field(default_factory=list)


class _Builder:
    def __init__(self, out_dir, notebooks_dir, results_path, project_root):
        self.out = Path(out_dir)
        self.notebooks_dir = Path(notebooks_dir).resolve()
        self.results_path = Path(results_path)
        self.root = Path(project_root).resolve()
        self.report = SiteBuild(out_dir=self.out)
        self.repo_files = {}  # repo-relative path -> site-relative path of its copy
        self.pages = notebook_pages(self.notebooks_dir)
        self.stems = {page.stem for page in self.pages}
        self.current = None  # the notebook being rendered, for messages
        self.cell_index = {}  # cell id -> index of the cell in the notebook being rendered, for messages

        import jinja2

        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(TEMPLATES_DIR), autoescape=True, keep_trailing_newline=True
        )

    # -- links ---------------------------------------------------------------------------------

    def warn(self, message):
        where = f"{self.current}: " if self.current else ""
        self.report.warnings.append(where + message)

    def markdown(self, source, where, **options):
        """Markdown to HTML with its math as MathML (:func:`markdown_to_html`), warning about TeX left as text."""
        fragment = markdown_to_html(source, where, **options)
        for span in _leftover_tex(fragment):
            self.report.warnings.append(f"{where}: Markdown still shows TeX as text: {span[:80]}")
        return fragment

    def _cell_where(self, context):
        """Where the Markdown that the notebook template renders comes from: notebook, cell, and whether it is
        a Markdown output of that cell."""
        cell = context.get("cell") or {}
        where = self.current or "notebook"
        index = self.cell_index.get(cell.get("id"))
        if index is not None:
            where += f", cell {index}"
        if context.get("output") is not None:
            where += " (a Markdown output)"
        return where

    def rewrite_links(self, fragment, source_dir=None):
        """Rewrite the relative ``href``/``src`` of HTML rendered from a notebook's Markdown."""
        source_dir = Path(source_dir or self.notebooks_dir)

        def replace(match):
            attribute, value = match.group(1), html.unescape(match.group(2))
            new = self._site_url(value, source_dir)
            return f'{attribute}="{html.escape(new, quote=True)}"'

        return _URL_ATTRIBUTE.sub(replace, fragment)

    def _site_url(self, url, source_dir):
        if not url or url.startswith(("#", "/")) or _SCHEME.match(url):
            return url
        parts = urlsplit(url)
        anchor = f"#{parts.fragment}" if parts.fragment else ""
        target = (source_dir / unquote(parts.path)).resolve()
        if target.suffix == ".ipynb" and target.parent == self.notebooks_dir:
            if target.stem not in self.stems:
                self.warn(f"link to a notebook that does not exist (yet): {url}")
            return f"{quote(target.stem)}.html{anchor}"
        if not target.is_relative_to(self.root):
            self.warn(f"link outside the project left as it is: {url}")
            return url
        if not target.exists():
            self.warn(f"link to a missing file left as it is: {url}")
            return url
        site_path = self._copy_repo_path(target)
        if re.fullmatch(r"L\d+(-L\d+)?", parts.fragment or ""):  # GitHub-style line anchors
            anchor = "#L-" + parts.fragment.split("-")[0][1:]
        return quote(site_path) + anchor

    def _copy_repo_path(self, target):
        """Site-relative path of a repository file or directory, rendered into site/code/."""
        rel = target.relative_to(self.root).as_posix()
        if rel in self.repo_files:
            return self.repo_files[rel]
        if target.is_dir():
            site_path = f"code/{rel}/index.html" if rel != "." else "code/index.html"
            self.repo_files[rel] = site_path
            self._write_listing(target, rel, site_path)
        elif _is_text(target):
            site_path = f"code/{rel}.html"
            self.repo_files[rel] = site_path
            self._write_code_page(target, rel, site_path)
        else:
            site_path = f"code/{rel}"
            self.repo_files[rel] = site_path
            (self.out / site_path).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(target, self.out / site_path)
        return site_path

    # -- pages ---------------------------------------------------------------------------------

    def _nav(self, index, where, depth=0):
        """The navigation bar (templates/nav.html.j2) of notebook ``index`` (None: a page that is no notebook)."""
        prev = nxt = None
        if index is not None:
            prev = self.pages[index - 1] if index > 0 else None
            nxt = self.pages[index + 1] if index + 1 < len(self.pages) else None
        template = self.env.get_template("nav.html.j2")
        return template.render(where=where, up="../" * depth, prev=prev, next=nxt).strip()

    def _render(self, template, site_path, **context):
        depth = site_path.count("/")
        context.setdefault("root", "../" * depth)
        context.setdefault("scripts", [])
        context.setdefault("nav", self._markup(self._nav(None, "top", depth)))
        text = self.env.get_template(template).render(**context)
        self._write(site_path, text)

    def _write(self, site_path, text):
        path = self.out / site_path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        self.report.pages.append(site_path)

    @staticmethod
    def _markup(text):
        import markupsafe

        return markupsafe.Markup(text)

    def _write_code_page(self, target, rel, site_path):
        from pygments import highlight
        from pygments.formatters import HtmlFormatter
        from pygments.lexers import TextLexer, get_lexer_for_filename

        source = target.read_text(encoding="utf-8", errors="replace")
        if target.suffix == ".md":
            body = '<div class="markdown-body">' + self.rewrite_links(
                _github_heading_ids(self.markdown(source, rel)), target.parent
            ) + "</div>"
            # the links above are relative to site/, the page lives deeper: prefix them
            body = _prefix_relative(body, "../" * site_path.count("/"))
            style = ""
        else:
            try:
                lexer = get_lexer_for_filename(target.name, stripnl=False)
            except Exception:  # pygments raises ClassNotFound for unknown names
                lexer = TextLexer(stripnl=False)
            formatter = HtmlFormatter(linenos="table", lineanchors="L", anchorlinenos=True, wrapcode=True)
            body = highlight(source, lexer, formatter)
            style = formatter.get_style_defs(".code-body")
        self._render(
            "code.html.j2", site_path, title=f"{rel} · {SITE_TITLE}", path=rel,
            body=self._markup(f"<style>{style}</style>{body}" if style else body),
        )

    def _write_listing(self, target, rel, site_path):
        items = []
        for child in sorted(target.iterdir()):
            if child.name.startswith((".", "__")) or not (child.is_file() and _is_text(child)):
                continue
            child_site = self._copy_repo_path(child)
            items.append({"href": _relative(child_site, site_path), "name": child.name})
        body = self.env.get_template("listing.html.j2").render(items=items).strip()
        self._render("code.html.j2", site_path, title=f"{rel}/ · {SITE_TITLE}", path=f"{rel}/",
                     body=self._markup(body))

    def _figure_page(self, page, n, figure):
        import plotly.io as pio

        from .plots import HEIGHT, WIDTH  # the size of a figure whose layout sets none, as in the PNGs

        site_path = f"figures/{page.stem}-{n}.html"
        plot = pio.to_html(
            figure, config={**OFFLINE_PLOTLY_CONFIG, **(figure.get("config") or {})},
            include_plotlyjs=False, full_html=False,
            validate=False, div_id=f"figure-{n}",
            default_width=f"{WIDTH}px", default_height=f"{HEIGHT}px",
        )
        self._render(
            "figure.html.j2", site_path,
            title=f"Figure {n}: {_figure_title(figure) or page.title_text}",
            n=n, notebook_title=page.title_text,
            back_href=f"../{quote(page.html_name)}#figure-{n}",
            plot=self._markup(plot), scripts=["../plotly.min.js"],
        )
        self.report.figures.append(site_path)
        return site_path

    def _prepare_figures(self, page, nb):
        """Move each plotly figure out of the notebook into its own page; tag its PNG output."""
        n = 0
        for cell in nb.cells:
            for output in cell.get("outputs", []):
                data = output.get("data", {})
                if PLOTLY_MIME not in data:
                    continue
                n += 1
                figure = data.pop(PLOTLY_MIME)
                href = self._figure_page(page, n, figure)
                title = _figure_title(figure)
                if "image/png" in data:
                    output.setdefault("metadata", {})["site_figure"] = {
                        "id": f"figure-{n}", "n": n, "href": href, "alt": title or f"Figure {n}",
                    }
                else:
                    self.warn(f"figure {n} has no PNG output: the page shows only a link to it")
                    data["text/html"] = (
                        f'<p id="figure-{n}">Figure {n} has no static image: '
                        f'<a href="{html.escape(href)}">open the interactive version</a>.</p>'
                    )

    def build(self):
        self._prepare_out_dir()
        self._write_static()
        exporter = self._exporter()
        for index, page in enumerate(self.pages):
            self.current = page.path.name
            self._notebook_page(exporter, index, page)
        self.current = None
        self._index_page()
        return self.report

    def _prepare_out_dir(self):
        out = self.out
        if out.exists() and any(out.iterdir()):
            if not (out / MARKER_FILE).exists():
                raise FileExistsError(
                    f"{out} is not empty and was not built by mnist_knn.report.site (no {MARKER_FILE}); "
                    "refusing to delete it. Choose an empty or new directory."
                )
            for child in out.iterdir():
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child)
                else:
                    child.unlink()
        out.mkdir(parents=True, exist_ok=True)
        (out / MARKER_FILE).write_text("Built by `python -m mnist_knn.report.site`; rebuilt from scratch each time.\n")

    def _write_static(self):
        import plotly

        (self.out / "static").mkdir(exist_ok=True)
        shutil.copyfile(TEMPLATES_DIR / "site.css", self.out / "static" / "site.css")
        plotly_js = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
        shutil.copyfile(plotly_js, self.out / "plotly.min.js")

    def _exporter(self):
        import jinja2
        from nbconvert import HTMLExporter

        from nbconvert.preprocessors import TagRemovePreprocessor

        from .prose import PROSE_TAG

        exporter = HTMLExporter(
            template_name="lab",
            template_file="notebook.html.j2",
            extra_template_paths=[str(TEMPLATES_DIR)],
            exclude_anchor_links=False,
        )
        # Prose cells (mnist_knn/report/prose.py) show their generated Markdown, not the f-string behind it
        exporter.register_preprocessor(TagRemovePreprocessor(remove_input_tags={PROSE_TAG}), enabled=True)

        @jinja2.pass_context
        def markdown2html(context, source):
            """nbconvert's own filter (HTMLExporter.markdown2html, same options), with the math as MathML."""
            cell = context.get("cell") or {}
            return self.markdown(
                source, self._cell_where(context),
                attachments=cell.get("attachments", {}),
                path=context.get("resources", {}).get("metadata", {}).get("path", ""),
                embed_images=exporter.embed_images,
                anchor_link_text=exporter.anchor_link_text,
                exclude_anchor_links=exporter.exclude_anchor_links,
                **exporter.lexer_options,
            )

        # Markdown cells and Markdown outputs both go through the template's markdown2html filter
        exporter.register_filter("markdown2html", markdown2html)
        exporter.register_filter("site_links", self.rewrite_links)
        return exporter

    def _notebook_page(self, exporter, index, page):
        import nbformat

        nb = nbformat.read(page.path, as_version=4)
        self._prepare_figures(page, nb)
        self.cell_index = {cell.get("id"): i for i, cell in enumerate(nb.cells)}
        resources = {
            "metadata": {"name": page.title_text, "path": str(page.path.parent)},
            "site": {"nav_top": self._nav(index, "top"), "nav_bottom": self._nav(index, "bottom")},
        }
        body, _ = exporter.from_notebook_node(nb, resources=resources)
        self._write(page.html_name, body)

    def _index_page(self):
        results = load_results(self.results_path)
        rows = results_rows(results)
        titles = {page.stem: page.title_text for page in self.pages}
        for row in rows:
            row["notebook"] = titles.get(row["stem"], row["stem"])
            row["href"] = f"{quote(row['stem'])}.html"
            row["also"] = [{"label": stem[:2], "href": f"{quote(stem)}.html"} for stem in row["also_in"]]
            if row["stem"] not in self.stems:
                self.warn(f"results.json: {row['key']} names a notebook that does not exist: {row['stem']}")
        notebooks = [
            {
                "href": quote(page.html_name),
                "title_html": self._markup(
                    self.rewrite_links(_inline_markdown(page.title, f"{page.path.name} (title)"))
                ),
                "questions_html": self._markup(
                    self.rewrite_links(self.markdown(page.questions, f"{page.path.name} (questions)"))
                ) if page.questions else "",
            }
            for page in self.pages
        ]
        self._render(
            "index.html.j2", "index.html", title=SITE_TITLE, heading=SITE_TITLE,
            description=SITE_DESCRIPTION, rows=rows, notebooks=notebooks,
            nav=self._markup(""),
        )


def _inline_markdown(text, where=None):
    """Markdown of one line to HTML without the enclosing paragraph (math as MathML)."""
    rendered = markdown_to_html(text, where).strip()
    match = re.fullmatch(r"<p>(.*)</p>", rendered, flags=re.S)
    return match.group(1) if match else rendered


def _figure_title(figure):
    title = (figure.get("layout") or {}).get("title")
    if isinstance(title, dict):
        title = title.get("text")
    return html.unescape(_TAG.sub(" ", title)).strip() if isinstance(title, str) else ""


def _is_text(path):
    return path.suffix in TEXT_SUFFIXES or path.name in TEXT_NAMES


def _relative(target, start):
    """Path of site-relative ``target`` as seen from the page at site-relative ``start``."""
    import posixpath

    return posixpath.relpath(target, posixpath.dirname(start) or ".")


_HEADING = re.compile(r"(<h([1-6])\b[^>]*>)(.*?)(</h\2>)", re.S)


def _github_heading_ids(fragment):
    """Give every heading of a Markdown file rendered by nbconvert the anchor GitHub gives it too.

    The repository's Markdown files are read on the code host, so links into them name GitHub's anchors
    (``bibliography.md#keysers2007``: lower case, punctuation dropped, spaces to ``-``); nbconvert's own ids
    keep the heading's case. An empty ``<a id>`` in front of the heading's text carries GitHub's anchor.
    """
    def add(match):
        text = html.unescape(_TAG.sub("", match.group(3))).replace("¶", "")
        slug = re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")
        return f'{match.group(1)}<a id="{html.escape(slug, quote=True)}"></a>{match.group(3)}{match.group(4)}'

    return _HEADING.sub(add, fragment)


def _prefix_relative(fragment, prefix):
    """Prefix every relative href/src in an HTML fragment (for pages below the site root)."""
    if not prefix:
        return fragment

    def replace(match):
        value = html.unescape(match.group(2))
        if not value or value.startswith(("#", "/")) or _SCHEME.match(value):
            return match.group(0)
        return f'{match.group(1)}="{html.escape(prefix + value, quote=True)}"'

    return _URL_ATTRIBUTE.sub(replace, fragment)


def build_site(out_dir=None, *, notebooks_dir=None, results_path=None, project_root=None):
    """Render every executed notebook into a static, offline HTML site. Nothing is executed.

    Parameters
    ----------
    out_dir : path-like, optional
        Default ``site/`` of the project. Emptied first; refuses a non-empty directory that it did
        not build itself.
    notebooks_dir : path-like, optional
        Default ``notebooks/``: every ``NN-*.ipynb`` in it becomes a page, in name order.
    results_path : path-like, optional
        Default ``results.json``; when it does not exist, the index says no results are recorded yet.
    project_root : path-like, optional
        Links from the notebooks may point to files under this directory (default: the project).

    Returns
    -------
    SiteBuild
        The pages and figures written, and warnings about links that could not be resolved.
    """
    builder = _Builder(
        out_dir=out_dir or paths.PROJECT_ROOT / "site",
        notebooks_dir=notebooks_dir or paths.NOTEBOOKS_DIR,
        results_path=results_path or paths.RESULTS_FILE,
        project_root=project_root or paths.PROJECT_ROOT,
    )
    return builder.build()


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m mnist_knn.report.site",
        description="Render the executed notebooks into an offline HTML site and refresh the README's "
        "results table (nothing is executed).",
    )
    parser.add_argument("--readme", action="store_true",
                        help="only rewrite the README's results block from results.json")
    parser.add_argument("--out", type=Path, default=paths.PROJECT_ROOT / "site",
                        help="output directory (default: site/)")
    args = parser.parse_args(argv)

    readme = paths.PROJECT_ROOT / "README.md"
    try:
        changed = update_readme(readme)
    except ValueError as error:
        if args.readme:
            print(f"error: {error}", file=sys.stderr)
            return 1
        print(f"warning: README not updated: {error}", file=sys.stderr)
    else:
        print(f"README.md results block {'updated' if changed else 'already up to date'}.")
    if args.readme:
        return 0

    report = build_site(args.out)
    for warning in report.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(
        f"Wrote {len(report.pages)} pages ({len(report.figures)} interactive figures) to "
        f"{report.out_dir}; open {report.out_dir / 'index.html'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
