"""MkDocs hooks: serve Mermaid from the site itself, so diagrams render offline; resolve
snippet paths from the repository root, so `mkdocs build -f path/to/mkdocs.yml` works from
any directory.

Material for MkDocs renders ```mermaid blocks with the global ``mermaid`` if a page already
has one, and otherwise fetches ``mermaid@11`` from unpkg.com at view time. A reader offline,
or behind a firewall (and CI's headless browser check), would then see raw diagram source. So
the build ships one pinned, integrity-checked copy of ``mermaid.min.js`` in the site and
``mkdocs.yml`` loads it through ``extra_javascript``.

The file comes from the npm registry once (the tarball's sha512 is checked against the pin
below) and is cached in ``.cache/`` at the repository root, which git ignores.
"""

from __future__ import annotations

import base64
import hashlib
import io
import shutil
import tarfile
import urllib.request
from pathlib import Path
from typing import Any

from mkdocs.exceptions import PluginError

MERMAID_VERSION = "11.17.2"
TARBALL = f"https://registry.npmjs.org/mermaid/-/mermaid-{MERMAID_VERSION}.tgz"
INTEGRITY = (  # npm's dist.integrity for that tarball
    "sha512-V6K3C8EBdEsPFZXSKMJe6ppQOENxuHARr9GvHX4hh47lAbhMRD9qf4oEK7LoaRQxULMa80/qt5gHO73aCleBBg=="
)
MEMBER = "package/dist/mermaid.min.js"
CACHE = Path(__file__).resolve().parent.parent / ".cache" / f"mermaid-{MERMAID_VERSION}.min.js"
SITE_PATH = "assets/javascripts/mermaid.min.js"  # as listed in mkdocs.yml's extra_javascript


def _fetch() -> bytes:
    try:
        with urllib.request.urlopen(TARBALL, timeout=60) as response:
            tarball: bytes = response.read()
    except OSError as exc:
        raise PluginError(
            f"could not download Mermaid {MERMAID_VERSION} from {TARBALL}: {exc}; "
            f"put mermaid.min.js at {CACHE} to build offline"
        ) from exc
    digest = "sha512-" + base64.b64encode(hashlib.sha512(tarball).digest()).decode()
    if digest != INTEGRITY:
        raise PluginError(f"{TARBALL} does not match its pinned integrity {INTEGRITY}")
    with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as archive:
        member = archive.extractfile(MEMBER)
        if member is None:
            raise PluginError(f"{TARBALL} has no {MEMBER}")
        return member.read()


def on_config(config: Any) -> Any:
    # Snippet paths are relative to the repository, wherever mkdocs is run from.
    root = str(Path(config["config_file_path"]).resolve().parent)
    config["mdx_configs"].setdefault("pymdownx.snippets", {})["base_path"] = [root]
    if not CACHE.exists():
        CACHE.parent.mkdir(parents=True, exist_ok=True)
        partial = CACHE.with_suffix(".part")
        partial.write_bytes(_fetch())
        partial.replace(CACHE)
    return config


def on_post_build(config: Any) -> None:
    target = Path(config["site_dir"]) / SITE_PATH
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(CACHE, target)
