"""The README's Python examples run as written."""

from __future__ import annotations

import re

import pytest

from conftest import SDK

BLOCKS = re.findall(r"```python\n(.*?)```", (SDK / "README.md").read_text(), re.S)


@pytest.mark.parametrize("code", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_example_runs(code: str) -> None:
    exec(compile(code, "README.md", "exec"), {"__name__": "readme"})


def test_there_are_examples() -> None:
    assert len(BLOCKS) >= 3
