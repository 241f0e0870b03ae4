"""A notebook's bottom line: shown first, under its title, and computed by its last cell.

The first code cell calls :func:`bottom_line_here`, which shows a placeholder; the closing summary calls
:func:`fill_bottom_line` with three to five sentences whose numbers it has just computed, and the placeholder
is replaced in place (a display update: Jupyter, nbconvert and the stored notebook all show the filled text
at the top). The numbers are those of the closing summary, which strict nbval compares; the top cell itself
is marked ``# NBVAL_IGNORE_OUTPUT``, since nbval compares a cell's output as the cell first produced it.
"""

from IPython.display import Markdown, display, update_display

__all__ = ["bottom_line_here", "fill_bottom_line"]

DISPLAY_ID = "bottom-line"
PLACEHOLDER = "*The bottom line appears here when the notebook has run to its end: its last cell computes it.*"


def bottom_line_here():
    """Show the placeholder that :func:`fill_bottom_line` replaces."""
    display(Markdown(PLACEHOLDER), display_id=DISPLAY_ID)


def fill_bottom_line(text):
    """Replace the placeholder at the top of the notebook by ``text``, headed "The bottom line".

    Raises
    ------
    ValueError
        If ``text`` is empty.
    """
    text = str(text).strip()
    if not text:
        raise ValueError("The bottom line is empty.")
    update_display(Markdown(f"**The bottom line.** {text}"), display_id=DISPLAY_ID)
