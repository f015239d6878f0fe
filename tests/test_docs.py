"""The documentation: the site builds with every link and anchor resolved, the tutorial runs as it reads,
and the README's links and library lines work."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TUTORIAL = ROOT / "docs" / "tutorial.md"
README = ROOT / "README.md"


def python_blocks(path: Path) -> list[str]:
    """The ```python blocks of a Markdown file, in order (other languages, ```sh, ```text, are left out)."""
    return re.findall(r"^```python\n(.*?)^```", path.read_text(encoding="utf-8"), flags=re.S | re.M)


def test_site_builds_strict(tmp_path):
    """`mkdocs build --strict`: a warning fails it (a broken link or anchor, a page outside the nav, a
    docstring the API reference cannot render). About 5 s on a quiet 2-core CPU."""
    for module in ("mkdocs", "material", "mkdocstrings", "mkdocstrings_handlers.python"):
        pytest.importorskip(module, reason="the docs extra is not installed: pip install -e '.[docs]'")
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
                            cwd=ROOT, capture_output=True, text=True, timeout=600,
                            env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "site" / "tutorial" / "index.html").is_file()
    tutorial = (tmp_path / "site" / "tutorial" / "index.html").read_text(encoding="utf-8")
    assert tutorial.count("mkdocstrings-source") == 2, "the tutorial shows LSTMCell.step's and GRUCell.step's source"


def test_tutorial_runs_as_it_reads(tmp_path, monkeypatch):
    """Every ```python block of docs/tutorial.md, in order, in one namespace (as a reader pastes them)."""
    pytest.importorskip("matplotlib")  # the tutorial draws the inspect pictures
    blocks = python_blocks(TUTORIAL)
    assert len(blocks) >= 10
    monkeypatch.chdir(tmp_path)  # the pictures land here
    monkeypatch.setenv("MPLBACKEND", "Agg")
    namespace: dict = {"__name__": "__tutorial__"}
    for number, block in enumerate(blocks, 1):
        try:
            exec(compile(block, f"{TUTORIAL.name}, python block {number}", "exec"), namespace)
        except Exception as error:
            raise AssertionError(f"python block {number} of the tutorial failed:\n{block}") from error
    assert (tmp_path / "inspect_tutorial_lstm.png").stat().st_size > 0
    assert (tmp_path / "inspect_tutorial_gru.png").stat().st_size > 0


def test_readme_library_lines_run():
    """The README's ```python block (the library in a few lines)."""
    blocks = python_blocks(README)
    assert blocks
    namespace: dict = {"__name__": "__readme__"}
    for block in blocks:
        exec(compile(block, README.name, "exec"), namespace)


def _anchors(markdown: Path) -> set[str]:
    """The ids mkdocs gives a page's headings (Python-Markdown's toc slugify)."""
    slugify = pytest.importorskip("markdown.extensions.toc").slugify
    headings = re.findall(r"^#{1,6} (.+)$", re.sub(r"^```.*?^```", "", markdown.read_text(encoding="utf-8"),
                                                    flags=re.S | re.M), flags=re.M)
    return {slugify(heading.strip(), "-") for heading in headings}


def test_readme_links_resolve():
    """Every relative link and image of the README names a file in the repository (and a heading in it)."""
    text = README.read_text(encoding="utf-8")
    targets = re.findall(r"\]\(([^)\s]+)\)", text)
    relative = [t for t in targets if not re.match(r"[a-z]+://", t)]
    assert relative, "the README links to its docs pages"
    for target in relative:
        path, _, anchor = target.partition("#")
        file = README.parent / path if path else README
        assert file.exists(), f"README links to {target}: {file} does not exist"
        if anchor and file.suffix == ".md":
            assert anchor in _anchors(file), f"README links to {target}: no heading with that id"
