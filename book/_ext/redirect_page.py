"""Sphinx extension: make the site's index.html redirect a small complete page, with the book's icon.

sphinx-external-toc writes index.html as one bare <meta http-equiv="Refresh"> line when the root page has
another name (book/intro). A browser opening it also asks the server for /favicon.ico, which does not exist
(a 404 in the reader's console, caught by tests/browser/check_pages.py). This rewrites that line into a page
that names the icon, keeps the same redirect, and links to the target for a reader whose browser does not
follow it.
"""
from __future__ import annotations

import html
import posixpath
import re
from pathlib import Path

from sphinx.application import Sphinx

BARE_REDIRECT = re.compile(r'^<meta http-equiv="Refresh" content="0; url=([^"]+)" />\s*$')


def rewrite_redirect(app: Sphinx, exception: Exception | None) -> None:
    """Turn a bare redirect index.html into a complete page with the same target."""
    if exception is not None or app.builder.format != "html":
        return
    index = Path(app.outdir) / "index.html"
    found = BARE_REDIRECT.match(index.read_text(encoding="utf8")) if index.is_file() else None
    if not found:
        return  # no redirect there, or one that is already a full page
    target = html.escape(found.group(1))
    favicon = app.config.html_favicon or ""
    if favicon and "://" not in favicon:
        favicon = posixpath.join("_static", posixpath.basename(favicon))  # where Sphinx copies it
    icon = f'  <link rel="icon" href="{html.escape(favicon)}">\n' if favicon else ""
    index.write_text(
        "<!DOCTYPE html>\n<html>\n<head>\n  <meta charset=\"utf-8\">\n"
        f"  <title>{html.escape(app.config.html_title or app.config.project)}</title>\n{icon}"
        f'  <meta http-equiv="Refresh" content="0; url={target}">\n</head>\n'
        f'<body><p><a href="{target}">Go to the book</a></p></body>\n</html>\n',
        encoding="utf8",
    )


def setup(app: Sphinx) -> dict:
    # After sphinx-external-toc's own build-finished handler (default priority 500) has written the file.
    app.connect("build-finished", rewrite_redirect, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
