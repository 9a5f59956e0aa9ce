"""The CPUs an instance's Ray actor reserves: the function's `cpu`, else Lambda's share."""

from __future__ import annotations

import pytest

from lamina.executor import FunctionConfig
from lamina.executor.ray.backend import cpu_for


def _fn(memory_mb: int, cpu: float | None = None) -> FunctionConfig:
    return FunctionConfig(
        id="svc.fn",
        handler="m.f",
        service_path="/srv",
        memory_mb=memory_mb,
        timeout_s=3.0,
        concurrency=1,
        cpu=cpu,
    )


@pytest.mark.parametrize(
    ("memory_mb", "cpu", "expected"),
    [
        pytest.param(1769, None, 1.0, id="1769 MB is one vCPU, as on Lambda"),
        pytest.param(128, None, 0.0724, id="128 MB gets its share"),
        pytest.param(10240, None, 5.7886, id="the largest function gets almost 6"),
        pytest.param(128, 2.0, 2.0, id="an explicit cpu wins"),
    ],
)
def test_an_instance_reserves_its_cpu_setting_or_lambdas_share_for_its_memory(
    memory_mb: int, cpu: float | None, expected: float
) -> None:
    assert cpu_for(_fn(memory_mb, cpu)) == expected
