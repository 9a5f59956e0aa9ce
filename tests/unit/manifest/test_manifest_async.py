from __future__ import annotations

from pathlib import Path

import pytest

from lamina.errors import ManifestError
from lamina.manifest import parse_app


def _app(tmp_path: Path, function_extra: str) -> str:
    (tmp_path / "services" / "svc").mkdir(parents=True, exist_ok=True)
    (tmp_path / "services" / "svc" / "h.py").write_text("def f(e, c):\n    return 1\n")
    return (
        "app: a\nservices:\n  svc:\n    functions:\n      fn:\n        handler: h.f\n"
        + function_extra
    )


def test_async_retries_default_to_what_aws_lambda_does(tmp_path: Path) -> None:
    fn = parse_app(_app(tmp_path, ""), root=tmp_path).functions()["svc.fn"]
    assert (fn.async_invoke.max_retries, fn.async_invoke.backoff) == (2, 60.0)
    assert fn.async_invoke.max_event_age == 21600.0


def test_async_settings_are_read_with_sub_second_backoff_for_tests(tmp_path: Path) -> None:
    text = _app(tmp_path, "        async: {max_retries: 1, backoff: 0.05, max_event_age: 30}\n")
    fn = parse_app(text, root=tmp_path).functions()["svc.fn"]
    assert (fn.async_invoke.max_retries, fn.async_invoke.backoff) == (1, 0.05)
    assert fn.async_invoke.max_event_age == 30


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        pytest.param(
            "        async: {max_retries: 3}\n",
            "lamina.yaml:7: services.svc.functions.fn.async.max_retries: expected",
            id="more than two retries is refused as on aws",
        ),
        pytest.param(
            "        async: {retries: 1}\n",
            "did you mean 'max_retries'?",
            id="a misspelt async key gets a suggestion",
        ),
    ],
)
def test_bad_async_settings_name_the_key_and_line(tmp_path: Path, extra: str, message: str) -> None:
    with pytest.raises(ManifestError) as caught:
        parse_app(_app(tmp_path, extra), root=tmp_path)
    assert message in str(caught.value)
