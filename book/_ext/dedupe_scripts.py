"""Sphinx extension: emit each <script> of a page once.

sphinx-thebe and sphinx-togglebutton add inline scripts after the HTML builder has started, and Sphinx 7.4
then lists each of them twice in every page (once as registered, once as added to the builder). A second
`const THEBE_JS_URL = ...` is a SyntaxError in the reader's console (tests/browser/check_pages.py fails on
it), so repeated scripts are dropped here.
"""
from __future__ import annotations

from typing import Any

from sphinx.application import Sphinx


def dedupe_scripts(app: Sphinx, pagename: str, templatename: str, context: dict, doctree: Any) -> None:
    """Keep the first of each identical script (same file or body, same attributes), in order."""
    scripts = context.get("script_files")
    if not scripts:
        return
    seen: set = set()
    unique = []
    for script in scripts:
        # An inline script is registered once with filename "" (before the builder existed) and once with
        # None (after), so Sphinx's own check does not see them as equal; compare "" and None as one.
        key = (getattr(script, "filename", script) or "", getattr(script, "priority", 500),
               tuple(sorted(getattr(script, "attributes", {}).items())))
        if key not in seen:
            seen.add(key)
            unique.append(script)
    scripts[:] = unique


def setup(app: Sphinx) -> dict:
    # Late priority: run after the theme and the other extensions have added their scripts.
    app.connect("html-page-context", dedupe_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
