"""Stand-in for the compiled `torch_npu._C` extension.

Mirrors torch_npu 2.14.0 (wheel torch_npu-2.14.0-cp311-cp311-manylinux_2_28_x86_64.whl),
torch_npu/_C.cpython-311-x86_64-linux-gnu.so, which is compiled: only the `_profiler`
submodule is provided (see `_profiler.py`).
"""
