"""What `pip install` puts into site-packages: one `infertop` package holding every module of
engine/ and tui/ (as infertop.engine and infertop.tui), and nothing named `engine` or `tui`."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_wheel_holds_one_infertop_package_with_every_module(tmp_path: Path) -> None:
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    src = tmp_path / "src"
    for name in tracked:  # a copy: building writes build/ and *.egg-info into the tree
        if (ROOT / name).is_file():
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, src / name)
    out = tmp_path / "dist"
    build = "import sys; from setuptools import build_meta as b; print(b.build_wheel(sys.argv[1]))"
    done = subprocess.run(
        [sys.executable, "-c", build, str(out)], cwd=src, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-3000:]
    wheel = zipfile.ZipFile(out / done.stdout.strip().splitlines()[-1])
    names = set(wheel.namelist())
    tops = {n.split("/")[0] for n in names}
    assert {t for t in tops if not t.endswith(".dist-info")} == {"infertop"}
    expected = {
        f"infertop/{n}"
        for n in tracked
        if n.split("/")[0] in ("engine", "tui") and n.endswith(".py")
    }
    assert expected - names == set()  # a package missing from pyproject.toml shows here
    assert {"infertop/__main__.py", "infertop/tui/infertop.tcss"} <= names
    assert "infertop/engine/backends/torch/fused_ops.c" in names  # built on the user's CPU
    entry = next(n for n in names if n.endswith("entry_points.txt"))
    assert "infertop = infertop.tui.cli:main" in wheel.read(entry).decode()


def test_python_dash_m_infertop_is_the_console_script(tmp_path: Path) -> None:
    for cmd in ([sys.executable, "-m", "infertop"], [shutil.which("infertop") or "infertop"]):
        done = subprocess.run(
            [*cmd, "presets"], cwd=tmp_path, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, (cmd, done.stderr)
        assert "smollm2-135m (default)" in done.stdout
    nothing = subprocess.run(
        [sys.executable, "-c", "import engine"], cwd=tmp_path, capture_output=True, text=True
    )
    assert "No module named 'engine'" in nothing.stderr
