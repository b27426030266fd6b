"""BLAS's sgemv in torch's own library, for the batch-1 decode step whose layers run in one C
call (fused_ops.c's decode_one_row). F.linear of one row reaches the same function (MKL's, in
torch's x86 wheels: `perf` shows mkl_blas_avx512_xsgemv), so the C step multiplies with the
kernel chosen at load and no Python between its matmuls: on a 2-core Intel Xeon @ 2.80GHz the
Python between them cost 0.3 ms of a 56M model's 8 ms step with the weights streaming.

A torch without an exported sgemv_ (another BLAS, another platform), or one whose answer is
not F.linear's, gives a reason instead, and the step keeps its per-op calls."""

from __future__ import annotations

import ctypes
import platform
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

from infertop.engine.backends.torch.fused_build import FusedOps

SYMBOL = "sgemv_"


def torch_cpu_library() -> Path:
    suffix = ".dylib" if platform.system() == "Darwin" else ".so"
    return Path(torch.__file__).parent / "lib" / f"libtorch_cpu{suffix}"


PROBED: dict[Path, int | str] = {}  # per library: each is opened once (fused_build.opened)


def sgemv_address(ops: FusedOps) -> int | str:
    """The address of torch's sgemv_, checked against F.linear on a probe; or why not."""
    if ops.library not in PROBED:
        PROBED[ops.library] = probed(ops.linear_one_row)
    return PROBED[ops.library]


def probed(linear_one_row: Callable[..., None]) -> int | str:
    path = torch_cpu_library()
    try:
        func = getattr(ctypes.CDLL(str(path)), SYMBOL)
    except (OSError, AttributeError):
        return f"no {SYMBOL} in {path.name}"
    address = ctypes.cast(func, ctypes.c_void_p).value
    assert address is not None
    gen = torch.Generator().manual_seed(0)
    w, b, x = (torch.randn(*s, generator=gen) for s in ((40, 24), (40,), (1, 24)))
    for bias in (None, b):
        got = torch.empty(1, 40)
        ptr = None if bias is None else bias.data_ptr()
        linear_one_row(address, w.data_ptr(), ptr, x.data_ptr(), got.data_ptr(), 40, 24)
        if not torch.allclose(got, F.linear(x, w, bias), rtol=1e-5, atol=1e-5):
            return f"{path.name}'s {SYMBOL} does not give F.linear's answer"
    return address
