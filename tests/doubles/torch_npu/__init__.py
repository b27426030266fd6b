"""Test double of the `torch_npu` package: only the profiler API.

Mirrors torch_npu 2.14.0 (wheel torch_npu-2.14.0-cp311-cp311-manylinux_2_28_x86_64.whl,
sha256 7736f7d82cf9f16c7dfc4537f7e7c638153da760273a193455e70857f912189e),
torch_npu/__init__.py and torch_npu/version.py.

The real `import torch_npu` needs Ascend CANN. Put `tests/doubles` first on `sys.path`
to import this package instead. It provides `torch_npu.profiler` and nothing else: no
`torch_npu.npu`, no device, no patching of torch. The real package imports torch and
patches it on import; this one imports neither.
"""

from . import profiler

__version__ = "2.14.0"

__all__ = ["profiler", "__version__"]
