"""Look at the built documentation as a reader would, in headless Chromium.

    python docs/check_site.py [docs/_build/html] [--screenshots DIR]

Serves the built site on localhost and checks:

* every page (all but the generated API stubs and Sphinx's index pages, plus one API stub)
  renders in Chromium: its title, one ``h1`` in the article, no docutils error or warning
  box, no Python traceback in a cell output;
* every request the browser makes while rendering a page (stylesheets, scripts, figures) is
  served from the site, so figures show; every ``img`` of the rendered page was fetched;
* the search works: ``searchindex.js`` exists and ``search.html?q=generate`` lists results,
  among them the API page of ``generate``;
* no internal link of any built page is broken: every relative ``href``/``src`` resolves to a
  file, and a ``#fragment`` to an ``id`` in it.

Exit status 1 with one line per failure. Needs ``chromium`` on the PATH (Debian's package:
``.ci/install-chromium.sh``).
"""

from __future__ import annotations

import argparse
import functools
import http.server
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
    "--virtual-time-budget=10000",
]
SPHINX_PAGES = {"genindex.html", "search.html", "py-modindex.html"}
LINK_ATTRS = {"a": "href", "link": "href", "img": "src", "script": "src"}


class Page(HTMLParser):
    """What the checks need from one HTML document."""

    def __init__(self, text: str):
        super().__init__(convert_charrefs=True)
        self.title, self.ids, self.links, self.images, self.classes = "", set(), [], [], set()
        self.h1_in_article, self._in_title, self._article_depth = 0, False, 0
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for key in ("id", "name"):
            if attrs.get(key):
                self.ids.add(attrs[key])
        self.classes.update((attrs.get("class") or "").split())
        if tag in LINK_ATTRS and attrs.get(LINK_ATTRS[tag]):
            self.links.append(attrs[LINK_ATTRS[tag]])
        if tag == "img" and attrs.get("src"):
            self.images.append(attrs["src"])
        if tag == "title":
            self._in_title = True
        if tag == "article":
            self._article_depth += 1
        if tag == "h1" and self._article_depth:
            self.h1_in_article += 1

    def handle_endtag(self, tag):
        if tag == "title":
            self._in_title = False
        if tag == "article":
            self._article_depth -= 1

    def handle_data(self, data):
        if self._in_title:
            self.title += data


class Server:
    """The built site on an ephemeral localhost port; records every request and its status."""

    def __init__(self, root: Path):
        self.requests: list[tuple[str, int]] = []
        server = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def log_request(self, code="-", size="-"):
                server.requests.append((unquote(urlsplit(self.path).path), int(code)))

            def log_message(self, *args):
                pass

        handler = functools.partial(Handler, directory=str(root))
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def chromium(url: str, screenshot: Path | None = None) -> str:
    """The DOM of ``url`` after its scripts ran (or a screenshot of it), in a fresh profile (no cache)."""
    out = ["--screenshot=" + str(screenshot), "--window-size=1280,1600"] if screenshot else ["--dump-dom"]
    with tempfile.TemporaryDirectory() as profile:
        cmd = [shutil.which("chromium") or "chromium", *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *out, url]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"chromium exited {done.returncode} on {url}: {done.stderr.strip()[-500:]}")
    return done.stdout


def pages_to_open(root: Path) -> list[str]:
    """Every page but the generated API stubs and Sphinx's index pages, plus one API stub."""
    pages = sorted(
        p.relative_to(root).as_posix()
        for p in root.rglob("*.html")
        if "generated" not in p.parts and p.name not in SPHINX_PAGES and not p.parts[-2].startswith("_")
    )
    stubs = sorted(p.relative_to(root).as_posix() for p in root.glob("api/generated/*.html"))
    return pages + stubs[:1]


def check_rendered(root: Path, server: Server, rel: str) -> list[str]:
    """A page as the browser renders it: title, heading, no error box, every resource served."""
    static = Page((root / rel).read_text(encoding="utf-8"))
    start = len(server.requests)
    dom = Page(chromium(server.base + rel))
    fetched = dict(server.requests[start:])
    errors = []
    if not dom.title.strip() or dom.title.strip() != static.title.strip():
        errors.append(f"{rel}: title {dom.title.strip()!r} in the browser, {static.title.strip()!r} in the file")
    if dom.h1_in_article != 1:
        errors.append(f"{rel}: {dom.h1_in_article} h1 headings in the article, expected 1")
    for bad in ("system-message", "problematic", "traceback"):
        if bad in dom.classes:
            errors.append(f"{rel}: an element of class {bad!r} (a build error shown on the page)")
    for path, code in fetched.items():
        if code != 200 and path != "/favicon.ico":
            errors.append(f"{rel}: the browser's request for {path} got HTTP {code}")
    for src in dom.images:
        path = unquote(urlsplit(urljoin(server.base + rel, src)).path)
        if urlsplit(src).scheme in ("", "http") and not src.startswith("data:") and fetched.get(path) != 200:
            errors.append(f"{rel}: figure {src} was not loaded")
    return errors


def check_search(root: Path, server: Server) -> list[str]:
    """The search page, given ?q=generate, lists results, the API page of generate among them."""
    if not (root / "searchindex.js").is_file():
        return ["searchindex.js is missing"]
    dom = chromium(server.base + "search.html?q=generate")
    found = re.search(r'<ul[^>]*class="search"', dom)
    results = Page(dom[found.start() : dom.find("</ul>", found.start())]).links if found else []
    if not any("generated/srhm_datasets.generate" in link for link in results):
        return [f"search.html?q=generate lists {len(results)} results, none the API page of generate"]
    return []


def check_links(root: Path) -> list[str]:
    """Every relative href/src of every built page resolves to a file, and its #fragment to an id."""
    pages = {p: Page(p.read_text(encoding="utf-8")) for p in root.rglob("*.html")}
    errors = []
    for path, page in pages.items():
        for link in page.links:
            parts = urlsplit(link)
            if parts.scheme or link.startswith("//"):
                continue
            target = (path.parent / unquote(parts.path)).resolve() if parts.path else path
            if target.is_dir():
                target = target / "index.html"
            rel = path.relative_to(root)
            if not target.is_file() or root.resolve() not in target.parents:
                errors.append(f"{rel}: broken link {link}")
            elif parts.fragment and target.suffix == ".html":
                ids = pages[target].ids if target in pages else Page(target.read_text(encoding="utf-8")).ids
                if unquote(parts.fragment) not in ids:
                    errors.append(f"{rel}: link {link}: no id {parts.fragment!r} in {target.relative_to(root)}")
    return errors


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("site", nargs="?", default="docs/_build/html", type=Path)
    parser.add_argument("--screenshots", type=Path, help="also save a PNG of every page opened here")
    args = parser.parse_args(argv)
    root = args.site.resolve()
    if not (root / "index.html").is_file():
        print(f"no built site at {root} (run sphinx-build first)")
        return 1
    errors = check_links(root)
    server = Server(root)
    try:
        pages = pages_to_open(root)
        for rel in pages:
            errors += check_rendered(root, server, rel)
            if args.screenshots:
                args.screenshots.mkdir(parents=True, exist_ok=True)
                png = args.screenshots / (rel.replace("/", "_").removesuffix(".html") + ".png")
                chromium(server.base + rel, screenshot=png.resolve())
        errors += check_search(root, server)
    finally:
        server.close()
    for line in errors:
        print(line)
    print(
        f"{len(pages)} pages opened in chromium, links of {sum(1 for _ in root.rglob('*.html'))} pages checked: "
        + ("OK" if not errors else f"{len(errors)} problem(s)")
    )
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
