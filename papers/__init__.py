"""Reproductions of the papers behind theorylab: ``python -m papers --list``.

Not installed with the package; run from a checkout of the repository.
"""

from papers._harness import (
    PAPERS,
    Paper,
    PaperOutput,
    RunContext,
    discover,
    register_paper,
    run_paper,
)

__all__ = [
    "PAPERS",
    "Paper",
    "PaperOutput",
    "RunContext",
    "discover",
    "register_paper",
    "run_paper",
]
