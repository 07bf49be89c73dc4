"""Build the site and take screenshots of its pages in headless Chromium, as a reader sees them.

    python3 dev.py docs-shots                      # the default pages, into site-shots/
    python3 dev.py docs-shots tutorial/3-first-actor/ reference/ports/
    python3 dev.py docs-shots --height=12000 explanation/supervision/   # a long page whole

Needs Debian's ``chromium`` package (``apt-get install chromium``); it is not a project
dependency because CI does not run this: it is for a person to look at the PNGs (Mermaid
diagrams, lists, tables, the generated reference) before saying the docs are done.
"""

from __future__ import annotations

import functools
import http.server
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "site-shots"
PAGES = ["", "tutorial/1-first-channel/", "tutorial/5-failures/", "reference/ports/"]
CHROMIUM_FLAGS = [  # as the machine notes say: no sandbox as root, no background networking
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--virtual-time-budget=10000",  # lets Mermaid render before the shot
]


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def main(argv: list[str]) -> int:
    height = 3000
    pages = []
    for arg in argv:
        if arg.startswith("--height="):
            height = int(arg.removeprefix("--height="))
        else:
            pages.append(arg)
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        sys.exit("docs-shots needs Chromium: apt-get install chromium")
    with tempfile.TemporaryDirectory() as tmp:
        site = Path(tmp) / "site"
        mkdocs = Path(sys.executable).parent / "mkdocs"
        subprocess.run([mkdocs, "build", "--strict", "--quiet", "-d", site], cwd=ROOT, check=True)
        handler = functools.partial(_QuietHandler, directory=site)
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        OUT.mkdir(exist_ok=True)
        try:
            for page in pages or PAGES:
                name = page.strip("/").replace("/", "-") or "home"
                png = OUT / f"{name}.png"
                subprocess.run(
                    [
                        chromium,
                        *CHROMIUM_FLAGS,
                        f"--user-data-dir={Path(tmp) / 'profile'}",
                        f"--window-size=1280,{height}",
                        f"--screenshot={png}",
                        f"http://127.0.0.1:{server.server_port}/{page}",
                    ],
                    check=True,
                    capture_output=True,
                    timeout=120,
                )
                print(png.relative_to(ROOT))
        finally:
            server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
