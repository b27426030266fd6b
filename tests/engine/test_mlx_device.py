"""MLX's device name and memory come from mx.device_info(), never the deprecated
mx.metal.device_info() (since mlx 0.30.4 it prints a warning on stderr)."""

from __future__ import annotations

import pytest

mx = pytest.importorskip("mlx.core")

from infertop.engine.backends.mlx.device import MlxDevice  # noqa: E402


def metal_device_info(d: object = None) -> dict[str, str | int]:
    """Stands in for mlx.core.device_info on Apple silicon, which this machine lacks; the
    signature is mlx 0.32.4's (`device_info(d: None | Device | DeviceType = None) ->
    dict[str, str | int]`, read from the installed package's docstring); the keys are the
    Metal backend's."""
    return {
        "device_name": "Apple M3 Max",
        "architecture": "applegpu_g15s",
        "max_recommended_working_set_size": 100 << 30,
        "memory_size": 128 << 30,
    }


def deprecated(*args: object) -> dict[str, str | int]:
    raise AssertionError("mx.metal.device_info is deprecated: use mx.device_info")


def test_on_metal_the_name_and_free_memory_come_from_device_info(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(mx.metal, "is_available", lambda: True)
    monkeypatch.setattr(mx.metal, "device_info", deprecated)
    monkeypatch.setattr(mx, "device_info", metal_device_info)
    device = MlxDevice()
    assert device.name == "Apple M3 Max"
    assert 0 < device.free_bytes() <= 100 << 30


def test_the_real_device_info_answers_here_without_a_warning(
    capfd: pytest.CaptureFixture[str],
) -> None:
    info = mx.device_info()  # the real call, on this machine's CPU
    assert isinstance(info, dict) and info
    assert MlxDevice().name  # and the name the header shows
    assert "deprecated" not in capfd.readouterr().err
