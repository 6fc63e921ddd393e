"""Show check feedback in a notebook, with each lecture section it names as a link.

Feedback names sections as ``section 4.3 'Large folios: all or nothing' (course/04-mlock.ipynb)``.
In JupyterLab that becomes a link to the heading itself: an exercise notebook sits one folder
below the project, beside ``course/``, and JupyterLab gives each heading the anchor of its text
with spaces as dashes.
"""

from __future__ import annotations

import html
import re
from urllib.parse import quote

SECTION = re.compile(r"section (\S+) '([^']+)' \((course/[^)\s]+\.ipynb)\)")
STYLE = (
    "border-left:4px solid #c62828;background:#ffebee;padding:.4rem .8rem;white-space:pre-wrap;font-family:monospace"
)


def section_href(number: str, title: str, path: str) -> str:
    """The link from an exercise notebook to lecture section ``number`` titled ``title``."""
    anchor = f"{number} {title.replace('`', '')}".replace(" ", "-")
    return f"../{path}#{quote(anchor, safe=':/()-.')}"


def feedback_html(message: str) -> str:
    """``message`` as HTML, each section it names linked to the lecture."""
    parts, last = [], 0
    for match in SECTION.finditer(message):
        parts.append(html.escape(message[last : match.start()]))
        href = section_href(*match.groups())
        parts.append(f'<a href="{html.escape(href)}" target="_blank">{html.escape(match.group(0))}</a>')
        last = match.end()
    parts.append(html.escape(message[last:]))
    return f'<div style="{STYLE}">{"".join(parts)}</div>'


def show_feedback(message: str) -> None:
    """Display a failed check's feedback: plain text everywhere, linked HTML where it renders."""
    try:
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:
        get_ipython = None
    if get_ipython is None or get_ipython() is None:
        print(message)
        return
    display({"text/plain": message, "text/html": feedback_html(message)}, raw=True)
