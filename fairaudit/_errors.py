"""Error and warning types of fairaudit.

Every problem with user input is raised once, at the boundary, as a :class:`FairauditError`
whose message names the argument, what was expected and what was found. The command line turns
it into one line ``fairaudit: error: ...`` and exit code 2.
"""

from __future__ import annotations

__all__ = ["FairauditError", "FairauditWarning"]


class FairauditError(ValueError):
    """Bad input: the message names the argument, the expected form and what was found."""


class FairauditWarning(UserWarning):
    """A documented, non-fatal problem (small groups, dropped rows, undefined metrics)."""


def bad(argument: str, expected: str, found: str) -> FairauditError:
    """Build the standard one-line error: ``<argument>: expected <expected>, found <found>``."""
    return FairauditError(f"{argument}: expected {expected}, found {found}")
