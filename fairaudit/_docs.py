"""Documentation generated from the definition tables (the README's tables come from here).

``python -m fairaudit._docs`` prints the metric and gap tables; a test checks that the README
holds them verbatim, so a metric is named and defined in one place only.
"""

from ._gaps import COMPOSITES, GAP_KINDS
from ._metrics import METRICS


def metric_table() -> str:
    lines = ["| metric | definition | worse when |", "|---|---|---|"]
    for m in METRICS:
        formula = m.formula.replace("|", "\\|")
        lines.append(f"| `{m.name}` | {formula} | {'higher' if m.higher_is_worse else 'lower'} |")
    return "\n".join(lines)


def gap_table() -> str:
    lines = ["| gap | definition |", "|---|---|"]
    for kind, text in GAP_KINDS.items():
        lines.append(f"| `<m>_{kind}` | {text.replace('|', chr(92) + '|')} |")
    for name, text in COMPOSITES.items():
        lines.append(f"| `{name}` | {text} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(metric_table())
    print()
    print(gap_table())
