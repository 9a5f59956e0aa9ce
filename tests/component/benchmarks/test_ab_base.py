"""benchmarks/ab.py refuses a --base that names no commit (it asks git) before it starts
anything."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[3] / "benchmarks"))

from ab import commit_of, main


def test_a_base_that_names_no_commit_is_refused_before_anything_starts(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert commit_of("HEAD") is not None
    with pytest.raises(SystemExit) as exit_:
        main(["--base", "no-such-branch-xyz"])
    assert exit_.value.code == 2
    assert "--base 'no-such-branch-xyz' names no commit of" in capsys.readouterr().err
