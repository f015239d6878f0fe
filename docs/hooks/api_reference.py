"""mkdocs hook: one API reference page per public module of src/rnncount, found at build time.

The modules move (a package's layout is expected to change), so the pages and their nav entries are not
written by hand: each module `rnncount.x` (a package's submodules too, as `rnncount.x.y`) gets a page
`api/x.md` (`api/x/y.md`) holding `::: rnncount.x`, and the nav's last section, "API reference", lists them.
Private modules (a leading underscore) and __main__ are left out.
"""

from __future__ import annotations

from pathlib import Path

from mkdocs.structure.files import File

SECTION = "API reference"


def _modules(config) -> list[str]:
    """Dotted names of the public modules under src/rnncount, sorted: ['cells', 'data', ...]."""
    package = Path(config.config_file_path).parent / "src" / "rnncount"
    names = []
    for path in sorted(package.rglob("*.py")):
        parts = path.relative_to(package).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        if parts and not any(part.startswith("_") for part in parts):
            names.append(".".join(parts))
    return names


def on_config(config):
    modules = _modules(config)
    entries = [{f"rnncount.{name}": f"api/{name.replace('.', '/')}.md"} for name in modules]
    config.nav = [item for item in config.nav if not (isinstance(item, dict) and SECTION in item)]
    config.nav.append({SECTION: entries})
    return config


def on_files(files, config):
    for name in _modules(config):
        files.append(File.generated(config, f"api/{name.replace('.', '/')}.md", content=f"::: rnncount.{name}\n"))
    return files
