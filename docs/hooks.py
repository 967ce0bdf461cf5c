"""MkDocs hook: the configuration reference, made from the options themselves."""

from __future__ import annotations

from typing import Any

MARK = "<!-- options -->"


def options_table() -> str:
    from streamal.config import OPTIONS

    rows = ["| key `[section] name` | flag | default | meaning |", "| --- | --- | --- | --- |"]
    for o in OPTIONS:
        section, name = o.key.split(".")
        flag = f"--[no-]{o.flag[2:]}" if o.type is bool else o.flag
        default = repr(o.default).replace("'", '"') if not isinstance(o.default, bool) else (
            str(o.default).lower())  # fmt: skip
        text = o.help.replace("|", "\\|")
        if o.choices:
            text += " (" + ", ".join(f"`{c}`" for c in o.choices) + ")"
        rows.append(f"| `[{section}] {name}` | `{flag}` | `{default}` | {text} |")
    return "\n".join(rows)


def on_page_markdown(markdown: str, page: Any, **kwargs: Any) -> str:
    if MARK in markdown:
        markdown = markdown.replace(MARK, options_table())
    return markdown
