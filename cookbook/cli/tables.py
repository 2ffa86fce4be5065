"""Tables and numbers for the commands' human output: plain text, or Markdown for GitHub."""

from __future__ import annotations


def fmt(value: float | None, digits: int, signed: bool = False) -> str:
    """Return *value* with *digits* decimals (and a sign if *signed*), or "n/a" for None."""
    if value is None:
        return "n/a"
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def render_table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    """Return *rows* under *header*, columns padded; the first column left-aligned."""
    widths = [max(len(str(row[i])) for row in (header, *rows)) for i in range(len(header))]
    lines = []
    for row in (header, *rows):
        cells = [
            str(cell).ljust(width) if i == 0 else str(cell).rjust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def render_markdown_table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    """Return *rows* under *header* as a GitHub Markdown table (numbers right-aligned)."""
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join([" --- "] + [" ---: "] * (len(header) - 1)) + "|"]  # fmt: skip
    lines += ["| " + " | ".join(str(cell).replace("|", "\\|") for cell in row) + " |"
              for row in rows]  # fmt: skip
    return "\n".join(lines)
