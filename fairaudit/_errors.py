"""Error and warning types of fairaudit.

Every problem with user input is raised once, at the boundary, as a :class:`FairauditError`
whose message names the argument, what was expected and what was found. The command line turns
it into one line ``fairaudit: error: ...`` and exit code 2.

One message, two audiences: a Python caller should read the names of Python arguments
(``n_boot``, ``drop_nan=True``), a command-line user the flags (``--n-boot``, ``--drop-nan``).
Messages therefore refer to options through :func:`opt`, a marker that
:meth:`FairauditError.render` spells either way; ``str(error)`` is the Python spelling and the
command line asks for its own.
"""

from __future__ import annotations

import re

import numpy as np

__all__ = ["FairauditError", "FairauditWarning"]

# Python argument -> command-line flag where the flag is not simply "--" + name with dashes.
_FLAG_EXCEPTIONS = {
    "clusters": "--cluster",
    "sample_weight": "--weights",
    "allow_perfect_scores": "--allow-perfect",
}
#: Python arguments that are options on the command line too (data arguments are not).
OPTION_NAMES = (
    "scores",
    "threshold",
    "pos_label",
    "n_boot",
    "n_perm",
    "ci",
    "ci_method",
    "bootstrap",
    "seed",
    "min_count",
    "max_bins",
    "drop_nan",
    "missing_groups",
    "allow_perfect_scores",
    "reference",
    "dataset",
    "compat",
    "figures",
    "clusters",
    "sample_weight",
    "chunk_size",
    "metrics",
    "gap_ci",
    "p_adjust",
    "tolerance",
    "fail_on",
)


def flag(name: str) -> str:
    """The command-line flag of a Python argument.

    >>> flag("n_boot"), flag("clusters")
    ('--n-boot', '--cluster')
    """
    return _FLAG_EXCEPTIONS.get(name, "--" + name.replace("_", "-"))


#: Python data arguments; the command line names them by the file the user gave.
DATA_NAMES = ("data", "y_true", "y_score", "score_a", "score_b", "groups")
_PYTHON_OF_FLAG = {flag(n): n for n in OPTION_NAMES}
_MARK = re.compile(r"⟦([A-Za-z_][A-Za-z0-9_]*)(?:=([^⟧]*))?⟧")
# numpy >= 2 reprs scalars as np.float64(0.5): never show those to a user
_NUMPY_REPR = re.compile(r"np\.[a-z_]+[0-9]*\(([^()]*)\)")


def opt(name: str, value=None) -> str:
    """A reference to an option inside a message, spelt per audience when rendered.

    >>> e = bad("n_boot", "a non-negative integer", "-1 (or " + opt("drop_nan", True) + ")")
    >>> str(e)
    'n_boot: expected a non-negative integer, found -1 (or drop_nan=True)'
    >>> e.render(cli=True)
    '--n-boot: expected a non-negative integer, found -1 (or --drop-nan)'
    """
    return f"⟦{name}⟧" if value is None else f"⟦{name}={value}⟧"


def shown(value) -> str:
    """A value as a user reads it: plain numbers (no ``np.float64(...)``), short lists.

    >>> shown(np.float64(0.25)), shown([np.int64(1), 2.5]), shown("a"), shown(np.float32(0.95))
    ('0.25', '[1, 2.5]', "'a'", '0.95')
    """
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(shown(v) for v in value) + "]"
    return repr(value)


def _python_value(text: str) -> str:
    if text in ("True", "False", "None"):
        return text
    try:
        float(text)
        return text
    except ValueError:
        return f'"{text}"'


class FairauditError(ValueError):
    """Bad input: the message names the argument, the expected form and what was found.

    ``str(error)`` (and ``error.args``) hold the message for Python callers;
    :meth:`render` spells it for the command line.

    >>> str(bad("--n-boot", "a non-negative integer", "-1"))
    'n_boot: expected a non-negative integer, found -1'
    """

    def __init__(self, message="", *args):
        self.template = str(message)
        super().__init__(self.render(), *args)

    def render(self, *, cli: bool = False, names: dict | None = None) -> str:
        """The message for Python callers, or with ``cli=True`` for the command line, where
        ``names`` maps data arguments to what the user typed (``{"y_score": "scores
        ('preds.npy')"}``)."""
        names = names or {}

        def spell(m):
            name, value = m.group(1), m.group(2)
            if cli:
                if value is None:
                    return names.get(name, flag(name) if name in OPTION_NAMES else name)
                shown_flag = flag(name)
                return shown_flag if value == "True" else f"{shown_flag} {value}"
            return name if value is None else f"{name}={_python_value(value)}"

        return _NUMPY_REPR.sub(r"\1", _MARK.sub(spell, self.template))


class FairauditWarning(UserWarning):
    """A documented, non-fatal problem (small groups, dropped rows, undefined metrics).

    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     warnings.warn("only 12 fake rows in race=black", FairauditWarning)
    >>> caught[0].category.__name__
    'FairauditWarning'
    """


def _argument(argument: str) -> str:
    """Mark an option given by flag (``"--bootstrap cluster"`` too) or by its bare Python
    name; other arguments (``"scores ('a.npy')"``) stay as they are."""
    argument = str(argument)
    if argument in OPTION_NAMES or argument in DATA_NAMES:
        return opt(argument)
    head, _, rest = argument.partition(" ")
    name = _PYTHON_OF_FLAG.get(head)
    if name is None:
        return argument
    if rest and " " not in rest:
        return opt(name, rest)
    return opt(name) + (" " + rest if rest else "")


def bad(argument: str, expected: str, found: str) -> FairauditError:
    """Build the standard one-line error: ``<argument>: expected <expected>, found <found>``.

    ``argument`` is a Python argument name or a command-line flag; either way the message
    names the option as its reader spells it.

    >>> str(bad("--bootstrap cluster", "a cluster column", "none"))
    'bootstrap="cluster": expected a cluster column, found none'
    >>> bad("--bootstrap cluster", "a cluster column", "none").render(cli=True)
    '--bootstrap cluster: expected a cluster column, found none'
    """
    return FairauditError(f"{_argument(argument)}: expected {expected}, found {found}")
