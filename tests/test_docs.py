"""The README's definition tables are generated from the code's tables (one source of truth)."""

import os

from fairaudit._docs import gap_table, metric_table

README = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "README.md")


def test_readme_holds_the_generated_tables():
    text = open(README, encoding="utf-8").read()
    assert metric_table() in text
    assert gap_table() in text


def test_every_metric_is_documented_once():
    from fairaudit import METRIC_NAMES

    table = metric_table()
    for m in METRIC_NAMES:
        assert table.count(f"| `{m}` |") == 1


def test_readme_shows_the_example_output_as_it_is():
    """The README's example output is what `python -m fairaudit report --example` prints."""
    from fairaudit._cli import main

    text = open(README, encoding="utf-8").read()
    block = text.split("```text\n", 1)[1].split("\n...\n```", 1)[0].splitlines()
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert main(["report", "--example", "--quiet"]) == 0
    printed = buf.getvalue().splitlines()
    assert printed[: len(block)] == block
    assert max(len(line) for line in printed) <= 100
