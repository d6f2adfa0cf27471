"""Translation of the providers' documented wire examples, compared with golden files,
in both directions: requests, responses, streams and error bodies."""

from __future__ import annotations

from pathlib import Path

import pytest

from .golden import cases, expected_path, load_json, produce

CASES = cases()


def test_every_direction_has_cases() -> None:
    kinds = {(src, path.stem.split("_")[0]) for src, path in CASES}
    for src in ("openai", "anthropic"):
        for kind in ("request", "response", "stream", "error"):
            assert (src, kind) in kinds


@pytest.mark.parametrize(("src", "source"), CASES, ids=[f"{s}-{p.name}" for s, p in CASES])
def test_translation_matches_golden(src: str, source: Path) -> None:
    assert produce(src, source) == load_json(expected_path(src, source))
