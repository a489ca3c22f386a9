"""Browser test: open every page of the built book in headless Chromium and check it as a reader sees it.

Usage (after `jupyter-book build . -W -n --keep-going`, from the repository root):

    python tests/browser/check_pages.py [HTML_DIR] [--screenshots DIR]

HTML_DIR defaults to _build/html; screenshots (one full-page PNG per page) go to HTML_DIR/../screenshots.
The pages are served from 127.0.0.1, as GitHub Pages serves them (or, with --from-disk, opened as files, as a
reader who opens _build/html/index.html does). For each page it checks:
  * every math element was typeset by MathJax (an mjx-container inside, no mjx-merror, every MathJax font
    loaded), and MathJax came from the book's own files;
  * every image loaded (naturalWidth > 0);
  * a chapter page (a notebook) has one Colab link, to its notebook on the repository's branch as written in
    _config.yml; other pages have none;
  * nothing was requested from outside the book, and the browser console shows no errors.
Needs Debian's `chromium` and `chromium-driver` and the `selenium` package; no network.
"""
from __future__ import annotations

import argparse
import base64
import functools
import http.server
import os
import pathlib
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field

import yaml

# Selenium's driver manager must never try to download a browser or driver: Debian's are named below.
os.environ.setdefault("SE_OFFLINE", "true")
from selenium import webdriver  # noqa: E402 (after SE_OFFLINE is set)
from selenium.webdriver.chrome.service import Service

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
# Without these flags (and a new empty profile) Chromium tries to reach the network, which is closed here.
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", "--hide-scrollbars", "--force-device-scale-factor=1", "--window-size=1280,1000",
]
WIDTH = 1280
MAX_SHOT_HEIGHT = 30000  # px; a longer page is cut here in its screenshot (the checks still cover all of it)

# Runs in the page once it has loaded: waits for MathJax, fonts and images, then reports what a reader gets.
INSPECT_JS = r"""
const done = arguments[arguments.length - 1];
const sleep = ms => new Promise(r => setTimeout(r, ms));
(async () => {
  // MathJax's script is deferred: until it has run, window.MathJax is only the configuration object.
  const wantsMathJax = [...document.scripts].some(s => /mathjax/i.test(s.src));
  for (let i = 0; wantsMathJax && !(window.MathJax && MathJax.startup && MathJax.startup.promise) && i < 200; i++) {
    await sleep(50);
  }
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) { await MathJax.startup.promise; }
  for (const img of document.images) { img.loading = "eager"; }
  await Promise.all([...document.images].map(img => img.decode().catch(() => null)));
  await document.fonts.ready;
  const maths = [...document.querySelectorAll(".math")];
  const colab = [...document.querySelectorAll("a[href*='colab.research.google.com']")].map(a => a.href);
  const mjxScripts = [...document.scripts].map(s => s.src).filter(s => /mathjax/i.test(s));
  return {
    maths: maths.length,
    untypeset: maths.filter(m => !m.querySelector("mjx-container")).map(m => m.textContent.slice(0, 80)),
    merrors: [...document.querySelectorAll("mjx-merror")].map(e => e.textContent.slice(0, 80)),
    // An undefined macro is shown as its own name in red (MathJax's noundefined), not as an mjx-merror.
    // The assistive MathML beside each rendering holds it as text: <mtext mathcolor="red">\name</mtext>.
    undefinedMacros: [...document.querySelectorAll("mjx-assistive-mml mtext")]
      .filter(t => /^\\[A-Za-z]/.test(t.textContent.trim()))
      .map(t => t.textContent.slice(0, 80)),
    mjxContainers: document.querySelectorAll("mjx-container").length,
    mjxScripts: mjxScripts,
    badFonts: [...document.fonts].filter(f => /^MJX/.test(f.family) && f.status === "error").map(f => f.family),
    images: document.images.length,
    brokenImages: [...document.images].filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src),
    colab: [...new Set(colab)],
    resources: performance.getEntriesByType("resource").map(r => r.name),
    height: Math.ceil(document.documentElement.scrollHeight),
  };
})().then(done, e => done({error: String(e)}));
"""


@dataclass
class PageResult:
    """What one page showed, and what was wrong with it."""

    page: str
    maths: int = 0
    images: int = 0
    colab: str = "-"
    problems: list[str] = field(default_factory=list)

    def line(self) -> str:
        status = "PASS" if not self.problems else "FAIL"
        head = f"{status} {self.page}  math={self.maths} images={self.images} colab={self.colab}"
        return "\n    ".join([head, *self.problems])


def expected_colab_url(notebook: str) -> str:
    """The Colab link for a notebook path (relative to the book root), from _config.yml alone."""
    config = yaml.safe_load((REPO_ROOT / "_config.yml").read_text())
    repo = config["repository"]
    org_repo = repo["url"].removeprefix("https://github.com/").strip("/")
    book_path = (repo.get("path_to_book") or "").strip("/")
    in_repo = f"{book_path}/{notebook}" if book_path else notebook
    colab = config["launch_buttons"]["colab_url"].rstrip("/")
    return f"{colab}/github/{org_repo}/blob/{repo['branch']}/{in_repo}"


def serve(html_dir: pathlib.Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    """Serve html_dir on a free loopback port; returns the server and its base URL."""
    handler = functools.partial(QuietHandler, directory=str(html_dir))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    """A static file handler that does not log every request to stderr."""

    def log_message(self, format: str, *args: object) -> None:
        pass


def start_browser(profile: str) -> webdriver.Chrome:
    """Headless Debian Chromium through Debian's chromedriver (selenium never downloads a driver)."""
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in [*CHROMIUM_FLAGS, f"--user-data-dir={profile}"]:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    driver.set_page_load_timeout(60)
    driver.set_script_timeout(60)
    return driver


def screenshot(driver: webdriver.Chrome, height: int, path: pathlib.Path) -> None:
    """A PNG of the whole page (up to MAX_SHOT_HEIGHT px), WIDTH px wide.

    The window is made as tall as the page for the shot: capturing beyond a short viewport instead
    mislays the theme's sticky sidebars.
    """
    height = min(max(height, 1), MAX_SHOT_HEIGHT)
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": WIDTH, "height": height, "deviceScaleFactor": 1, "mobile": False})
    try:
        shot = driver.execute_cdp_cmd("Page.captureScreenshot", {"format": "png"})
    finally:
        driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(base64.b64decode(shot["data"]))


def check_page(driver: webdriver.Chrome, base: str, page: str, shots: pathlib.Path) -> PageResult:
    """Open one page, take its screenshot and check it."""
    result = PageResult(page)
    driver.get_log("browser")  # drop anything left from the previous page
    driver.get(f"{base}/{page}")
    # A redirect page (index.html -> the root page) moves on by itself: check where it lands.
    for _ in range(100):
        if driver.execute_script("return document.readyState === 'complete' && "
                                 "!document.querySelector('meta[http-equiv=refresh]')"):
            break
        time.sleep(0.1)
    info = driver.execute_async_script(INSPECT_JS)
    if "error" in info:
        result.problems.append(f"page script failed: {info['error']}")
        return result
    screenshot(driver, info["height"], shots / pathlib.Path(page).with_suffix(".png"))
    result.maths, result.images = info["maths"], info["images"]

    if info["untypeset"]:
        result.problems.append(f"math not typeset ({len(info['untypeset'])}): {info['untypeset'][:3]}")
    if info["merrors"]:
        result.problems.append(f"MathJax errors: {info['merrors'][:3]}")
    if info["undefinedMacros"]:
        result.problems.append(f"undefined TeX macros: {info['undefinedMacros'][:3]}")
    if info["badFonts"]:
        result.problems.append(f"MathJax fonts failed to load: {sorted(set(info['badFonts']))}")
    if info["maths"] and not info["mjxContainers"]:
        result.problems.append("page has math but MathJax rendered nothing")
    if any(not src.startswith(base + "/") for src in info["mjxScripts"]):
        result.problems.append(f"MathJax not served from the book: {info['mjxScripts']}")
    if info["brokenImages"]:
        result.problems.append(f"images that did not load: {info['brokenImages']}")
    outside = [r for r in info["resources"] if not r.startswith(base + "/") and not r.startswith("data:")]
    if outside:
        result.problems.append(f"requests outside the book: {outside[:5]}")

    notebook = pathlib.Path(page).with_suffix(".ipynb").as_posix()
    if (REPO_ROOT / notebook).is_file():
        want = expected_colab_url(notebook)
        result.colab = "ok" if info["colab"] == [want] else "WRONG"
        if info["colab"] != [want]:
            result.problems.append(f"Colab links {info['colab']}, want exactly [{want}]")
    elif info["colab"]:
        result.problems.append(f"Colab link on a page that is not a notebook: {info['colab']}")

    errors = [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    if errors:
        result.problems.append(f"console errors ({len(errors)}): {errors[:5]}")
    return result


def pages_of(html_dir: pathlib.Path) -> list[str]:
    """Every built page, relative to html_dir (Sphinx's own folders of assets left out)."""
    skip = {"_static", "_sources", "_images", "_downloads"}
    return sorted(p.relative_to(html_dir).as_posix() for p in html_dir.rglob("*.html")
                  if not skip & set(p.relative_to(html_dir).parts))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("html_dir", nargs="?", default=str(REPO_ROOT / "_build" / "html"))
    parser.add_argument("--screenshots", help="folder for the PNGs (default: HTML_DIR/../screenshots)")
    parser.add_argument("--from-disk", action="store_true",
                        help="open the pages as file:// URLs, as a reader who opens _build/html/index.html does")
    args = parser.parse_args(argv)
    html_dir = pathlib.Path(args.html_dir).resolve()
    shots = pathlib.Path(args.screenshots or html_dir.parent / "screenshots").resolve()
    pages = pages_of(html_dir) if html_dir.is_dir() else []
    if not pages:
        print(f"no built pages in {html_dir}: build the book first", file=sys.stderr)
        return 2

    start = time.perf_counter()
    server, base = (None, html_dir.as_uri()) if args.from_disk else serve(html_dir)
    results = []
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        driver = start_browser(profile)
        try:
            for page in pages:
                results.append(check_page(driver, base, page, shots))
                print(results[-1].line(), flush=True)
        finally:
            driver.quit()
            if server:
                server.shutdown()
    failed = sum(bool(r.problems) for r in results)
    print(f"screenshots in {shots}; {time.perf_counter() - start:.0f} s")
    print(f"{len(results) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
