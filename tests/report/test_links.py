"""Every relative link in the notebooks' Markdown and in README.md resolves.

Links are read from the rendered Markdown (nbconvert's renderer), so every Markdown link syntax counts:
Markdown cells, and Markdown that code cells display (the generated Summary bullets, for instance).
A link resolves when its file exists and is not ignored by git (a fresh clone has it), and when its
``#anchor`` names a heading of the target, formed as nbconvert and JupyterLab form it: the heading's text
with spaces replaced by ``-`` (``## 2. Are the classes balanced?`` -> ``#2.-Are-the-classes-balanced?``).
Anchors into Markdown files (the README) follow GitHub's rule; ``#L10`` into a source file names a line.
"""

import difflib
import functools
import json
import re
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import nbformat
import pytest
from nbconvert.filters.markdown_mistune import markdown2html_mistune

from mnist_knn import paths

ROOT = paths.PROJECT_ROOT
README = ROOT / "README.md"
NOTEBOOKS = sorted(paths.NOTEBOOKS_DIR.glob("[0-9][0-9]-*.ipynb"))
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


class _LinksAndAnchors(HTMLParser):
    """Collects link targets (a href, img src) and element ids, with each heading's text."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.links, self.ids, self.heading_ids, self.headings = [], set(), set(), []
        self._heading = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "a" and "anchor-link" in (attrs.get("class") or "").split():
            return  # the "¶" link nbconvert adds to every heading: not written by anyone
        if tag == "a" and attrs.get("href") is not None:
            self.links.append(attrs["href"])
        if tag in ("img", "source") and attrs.get("src") is not None:
            self.links.append(attrs["src"])
        for name in ("id", "name"):
            if attrs.get(name):
                self.ids.add(unquote(attrs[name]))
        if re.fullmatch(r"h[1-6]", tag):
            self._heading = []
            if attrs.get("id"):
                self.heading_ids.add(unquote(attrs["id"]))

    def handle_endtag(self, tag):
        if re.fullmatch(r"h[1-6]", tag) and self._heading is not None:
            self.headings.append("".join(self._heading).strip())
            self._heading = None

    def handle_data(self, data):
        if self._heading is not None:
            self._heading.append(data)


def _parse_markdown(sources):
    parser = _LinksAndAnchors()
    for source in sources:
        parser.feed(markdown2html_mistune(source))
    parser.close()
    return parser


def notebook_markdown(path):
    """The Markdown of a notebook: its Markdown cells and the ``text/markdown`` outputs of its code cells."""
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            yield cell.source
        for output in cell.get("outputs", []):
            markdown = output.get("data", {}).get("text/markdown")
            if markdown:
                yield markdown if isinstance(markdown, str) else "".join(markdown)


def github_anchor(heading):
    """GitHub's anchor for a Markdown heading: lower case, punctuation dropped, spaces to '-'."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


@functools.lru_cache(maxsize=None)
def anchors(path):
    """The anchors a link may name in the file at ``path`` (percent-decoded)."""
    path = Path(path)
    if path.suffix == ".ipynb":
        return frozenset(_parse_markdown(notebook_markdown(path)).ids)
    if path.suffix == ".md":
        parsed = _parse_markdown([path.read_text(encoding="utf-8")])
        # GitHub shows the README: its own heading anchors, not nbconvert's (explicit ids still count)
        return frozenset((parsed.ids - parsed.heading_ids) | {github_anchor(h) for h in parsed.headings})
    return frozenset()


def _is_git_ignored(path, root):
    """Whether git ignores ``path`` (False outside a git work tree or without git)."""
    try:
        result = subprocess.run(
            ["git", "-C", str(root), "check-ignore", "-q", "--", str(path)],
            capture_output=True, timeout=20,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0


def link_problem(url, source, root=ROOT):
    """Why the link ``url`` in the file ``source`` does not resolve, or None if it does."""
    if not url or _SCHEME.match(url) or url.startswith("//"):
        return None  # external (http:, mailto:, data:): not checked here
    if url.startswith("/"):
        return f"{url}: absolute path; use a path relative to {source.name}"
    parts = urlsplit(url)
    target = (source.parent / unquote(parts.path)).resolve() if parts.path else source
    try:
        shown = target.relative_to(Path(root).resolve()).as_posix()
    except ValueError:
        return f"{url}: points outside the project ({target})"
    if not target.exists():
        return f"{url}: {shown} does not exist"
    if target != source and _is_git_ignored(target, root):
        return f"{url}: {shown} is ignored by git, so a fresh clone does not have it"
    fragment = unquote(parts.fragment)
    if not fragment:
        return None
    if target.suffix in (".ipynb", ".md"):
        known = anchors(target)
        if fragment not in known:
            close = difflib.get_close_matches(fragment, sorted(known), n=3)
            hint = f"; did you mean {', '.join('#' + c for c in close)}?" if close else ""
            return f"{url}: no heading #{fragment} in {shown}{hint}"
    elif re.fullmatch(r"L\d+(-L\d+)?", fragment) and target.is_file():
        n_lines = len(target.read_text(encoding="utf-8", errors="replace").splitlines())
        last = max(int(n) for n in re.findall(r"\d+", fragment))
        if last > n_lines:
            return f"{url}: {shown} has only {n_lines} lines"
    return None


def link_problems(source, root=ROOT):
    """All unresolved relative links of a notebook or Markdown file."""
    source = Path(source).resolve()
    if source.suffix == ".ipynb":
        sources = list(notebook_markdown(source))
    else:
        sources = [source.read_text(encoding="utf-8")]
    problems = []
    for url in _parse_markdown(sources).links:
        problem = link_problem(url, source, root)
        if problem and problem not in problems:
            problems.append(problem)
    return problems


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_links_resolve(notebook):
    problems = link_problems(notebook)
    assert not problems, f"{notebook.name} has links that do not resolve:\n  " + "\n  ".join(problems)


def test_readme_links_resolve():
    problems = link_problems(README)
    assert not problems, "README.md has links that do not resolve:\n  " + "\n  ".join(problems)


BIBLIOGRAPHY = ROOT / "references" / "bibliography.md"


def external_links(source):
    """The links of a notebook or Markdown file that lead outside the repository."""
    source = Path(source)
    texts = list(notebook_markdown(source)) if source.suffix == ".ipynb" else [source.read_text(encoding="utf-8")]
    return [url for url in _parse_markdown(texts).links if _SCHEME.match(url) or url.startswith("//")]


def bibliography_entries():
    """The bibliography's entries: {key: text of its section}."""
    sections = re.split(r"^### ", BIBLIOGRAPHY.read_text(encoding="utf-8"), flags=re.M)[1:]
    return {section.split("\n", 1)[0].strip(): section for section in sections}


def test_every_bibliography_entry_names_its_source():
    entries = bibliography_entries()
    assert entries, "references/bibliography.md has no entries"
    for key, text in entries.items():
        assert re.fullmatch(r"[A-Z][A-Za-z]+\d{4}|LeCunMNIST", key), f"{key}: keys are Author + year"
        assert re.search(r"<https?://[^>]+>", text), f"{key}: no URL or DOI"
        assert "Quoted:" in text or "Used, not quoted:" in text, f"{key}: does not say what the report takes from it"


@pytest.mark.parametrize(
    "source", NOTEBOOKS + [README, *sorted((ROOT / "references").glob("*.md"))],
    ids=lambda p: p.relative_to(ROOT).as_posix(),
)
def test_links_leave_the_repository_only_for_the_cited_sources(source):
    allowed = set(external_links(BIBLIOGRAPHY))
    stray = sorted(set(external_links(source)) - allowed)
    assert not stray, (f"{source.name} links outside the repository to sources the bibliography does not list "
                       f"(references/bibliography.md): {stray}")


# --- the checker itself, on a small synthetic project -------------------------------------------

def _notebook(path, *markdown, output_markdown=None):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell(m) for m in markdown]
    if output_markdown:
        cell = nbformat.v4.new_code_cell("display(Markdown(...))")
        cell.outputs = [nbformat.v4.new_output(
            "display_data", data={"text/markdown": output_markdown, "text/plain": "<Markdown>"}
        )]
        nb.cells.append(cell)
    nbformat.write(nb, path)
    return path


@pytest.fixture
def project(tmp_path):
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "mod.py").write_text("a = 1\nb = 2\n")
    _notebook(tmp_path / "notebooks" / "02-b.ipynb", "# 02 · B", "## 2. Are the *ten* classes balanced?")
    return tmp_path


def test_links_to_headings_files_and_lines_resolve(project):
    source = _notebook(
        project / "notebooks" / "01-a.ipynb",
        "# 01 · A\n\n## Summary: what we learned",
        "[B](02-b.ipynb#2.-Are-the-ten-classes-balanced?), [code](../pkg/mod.py#L2), "
        "[here](#Summary:-what-we-learned), [web](https://example.org/x#y), ![img](../pkg/mod.py)",
        output_markdown="[also encoded](02-b.ipynb#2.-Are-the-ten-classes-balanced%3F)",
    )
    assert link_problems(source, root=project) == []


def test_missing_file_is_reported(project):
    source = _notebook(project / "notebooks" / "01-a.ipynb", "# 01 · A\n\n[next](03-c.ipynb)")
    assert link_problems(source, root=project) == ["03-c.ipynb: notebooks/03-c.ipynb does not exist"]


def test_missing_anchor_is_reported_with_a_suggestion(project):
    source = _notebook(
        project / "notebooks" / "01-a.ipynb", "# 01 · A",
        output_markdown="see [§2](02-b.ipynb#2.-Are-the-classes-balanced?)",
    )
    (problem,) = link_problems(source, root=project)
    assert "no heading #2.-Are-the-classes-balanced?" in problem
    assert "did you mean #2.-Are-the-ten-classes-balanced?" in problem


def test_line_anchor_beyond_the_file_is_reported(project):
    source = _notebook(project / "notebooks" / "01-a.ipynb", "[code](../pkg/mod.py#L9)")
    assert link_problems(source, root=project) == ["../pkg/mod.py#L9: pkg/mod.py has only 2 lines"]


def test_readme_anchors_follow_github(project):
    readme = project / "README.md"
    readme.write_text("# Title\n\n## The two commands\n\n[ok](#the-two-commands) [bad](#The-two-commands)\n")
    assert link_problems(readme, root=project) == ["#The-two-commands: no heading #The-two-commands in README.md; "
                                                   "did you mean #the-two-commands?"]


def test_anchor_rule_matches_nbconvert_html(project):
    """The anchors accepted here are the ids nbconvert gives the headings in the rendered page."""
    from nbconvert import HTMLExporter

    path = project / "notebooks" / "02-b.ipynb"
    body, _ = HTMLExporter(template_name="lab").from_filename(str(path))
    ids = {unquote(i) for i in re.findall(r'<h[1-6][^>]*\bid="([^"]+)"', body)}
    assert ids == set(anchors(path)) == {"02-·-B", "2.-Are-the-ten-classes-balanced?"}


def test_results_file_gives_one_number_per_configuration():
    """The report's results.json as committed: no two notebooks give one configuration two numbers."""
    from mnist_knn.report.results import load_results

    results = load_results()
    seen = {}
    for key, entry in results.items():
        config = json.dumps(entry["config"], sort_keys=True)
        numbers = (entry["error"], entry["ci_low"], entry["ci_high"])
        if config in seen:
            other_key, other_numbers = seen[config]
            assert numbers == other_numbers, f"{key} and {other_key}: one configuration, two numbers"
        seen[config] = (key, numbers)


def test_every_result_says_how_it_was_chosen_outside_its_configuration():
    """The configuration describes the classifier; how it was chosen is said once, beside it, so that one
    classifier chosen by two notebooks is still one configuration with one number."""
    from mnist_knn.report.results import load_results

    for key, entry in load_results().items():
        assert entry.get("selection"), f"{key}: no 'selection' (how the configuration was chosen)"
        assert "training" in entry["selection"], f"{key}: chosen on {entry['selection']!r}, not on training digits"
        assert not {"k_selection", "chosen_on"} & set(entry["config"]), f"{key}: selection inside the configuration"
