"""Builds fused_ops.c with the machine's C compiler, once per CPU and source, into the cache
(~/.cache/infertop/fused-ops, or $INFERTOP_CACHE_DIR), and loads it through ctypes.

Where torch runs on GNU OpenMP (its Linux wheels: libgomp.so.1 in torch/lib), the library is
built with -fopenmp: its libgomp.so.1 is then the one torch loaded (the loader matches the
name), so its parallel regions share torch's threads. Another runtime (Intel's, LLVM's) would
add a second pool to the same cores, so there it is built without.

Without a compiler, or with INFERTOP_FUSED_OPS=0, there is no library and the decode step
keeps its ATen ops; `load_fused_ops` then says why in one line."""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path

import torch

from infertop.engine.user_cache import cache_root

SOURCE = Path(__file__).with_name("fused_ops.c")
OFF_SWITCH = "INFERTOP_FUSED_OPS"
# reassociation lets the compiler vectorize the dot products; not -ffast-math (see the source)
FLAGS = (
    "-O3",
    "-fPIC",
    "-shared",
    "-fno-math-errno",
    "-fno-trapping-math",
    "-fno-signed-zeros",
    "-fassociative-math",
)
BUILD_TIMEOUT_S = 120

CFunc = Callable[..., None]
P = ctypes.c_void_p
I64 = ctypes.c_int64
F32 = ctypes.c_float


class Attention(ctypes.Structure):
    """fused_ops.c's `Attention`, field for field."""

    _fields_ = [
        ("bsz", I64),
        ("nh", I64),
        ("nkv", I64),
        ("hd", I64),
        ("max_len", I64),
        ("scale", F32),
        ("eps", F32),
        ("q_norm", P),
        ("k_norm", P),
        ("cos", P),
        ("sin", P),
        ("k_cache", P),
        ("v_cache", P),
        ("scores", P),
        ("parallel_len", I64),
    ]


class OneRowLayer(ctypes.Structure):
    """fused_ops.c's `Layer`: one layer's plain weights and its Attention record."""

    _fields_ = [
        ("wqkv", P),
        ("bqkv", P),
        ("wo", P),
        ("w13", P),
        ("w2", P),
        ("ln1", P),
        ("ln2", P),
        ("after", P),
        ("attention", P),
    ]


class OneRowStep(ctypes.Structure):
    """fused_ops.c's `OneRowStep`: a batch-1 step's sizes, layers and scratch rows."""

    _fields_ = [
        ("layers", I64),
        ("dim", I64),
        ("attn_dim", I64),
        ("qkv_dim", I64),
        ("inter", I64),
        ("eps", F32),
        ("layer", P),
        ("embed", P),
        ("x", P),
        ("h", P),
        ("qkv", P),
        ("attn", P),
        ("o", P),
        ("gate_up", P),
        ("act", P),
        ("down", P),
        ("qkv_mv", P),  # each projection's matvec: BLAS's sgemv or own_sgemv
        ("o_mv", P),
        ("gate_up_mv", P),
        ("down_mv", P),
    ]


SIGNATURES: dict[str, list[type]] = {
    "rms_norm": [P, P, P, I64, I64, F32],
    "add_rms_norm": [P, P, P, P, I64, I64, F32],
    "silu_mul": [P, P, I64, I64],
    "decode_attention": [P, P, I64, P],
    "decode_one_row": [P, I64, I64],
    "linear_one_row": [P, P, P, P, P, I64, I64],
    "own_matmul": [P, P, P, P, I64, I64, I64],
    "own_matmul_bf16": [P, P, P, P, P, I64, I64, I64],
}


@dataclass(frozen=True)
class FusedOps:
    """The library's functions (pointers are passed as ints: tensor.data_ptr())."""

    library: Path
    rms_norm: CFunc
    add_rms_norm: CFunc
    silu_mul: CFunc
    decode_attention: CFunc
    decode_one_row: CFunc
    linear_one_row: CFunc
    own_matmul: CFunc
    own_matmul_bf16: CFunc
    own_sgemv: int  # the library's own matvec, sgemv's signature: its address, for calls from C
    threaded: bool  # built with OpenMP: its parallel regions run on torch's threads
    serial: str | None = None  # why not, where torch runs on several (serial_reason)


def torch_runs_on_libgomp() -> bool:
    """Whether the OpenMP runtime torch loaded is GNU's (Linux: its mapped libraries)."""
    try:
        maps = Path("/proc/self/maps").read_text()
    except OSError:
        return False
    return "/libgomp" in maps and "libiomp" not in maps and "libomp." not in maps


@cache
def openmp_flags(cc: str) -> tuple[str, ...]:
    """Once per process and compiler: torch's runtime does not change, and every load keys on
    it. None from clang: its -fopenmp links LLVM's libomp (a second pool of threads on the
    same cores, or no link where it is not installed), and with -fopenmp=libgomp it links
    torch's runtime but emits no parallel code."""
    return ("-fopenmp",) if torch_runs_on_libgomp() and not is_clang(cc) else ()


@cache
def is_clang(cc: str) -> bool:
    try:
        done = subprocess.run([cc, "--version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return "clang" in done.stdout.lower()


# torch's vector width for its own kernels (ATEN_CPU_CAPABILITY caps it): ours follows
CAPPED_X86 = {"AVX2": ["-mno-avx512f"], "DEFAULT": ["-mno-avx"]}


def native_flags() -> list[str]:
    """Tune for this CPU (AVX-512 where it has it), within the instruction set torch's own
    kernels use: ATEN_CPU_CAPABILITY=avx2 keeps AVX-512 out of both. The library is cached
    per CPU and capability (cpu_identity)."""
    machine = platform.machine().lower()
    if machine in ("x86_64", "amd64"):
        return ["-march=native", *CAPPED_X86.get(torch.backends.cpu.get_cpu_capability(), [])]
    if machine in ("arm64", "aarch64"):
        return ["-mcpu=native"]
    return []


CPUINFO = Path("/proc/cpuinfo")
# macOS has no /proc: the CPU's name and its feature flags (hw.optional.*: 1 or 0)
SYSCTL = ("sysctl", "machdep.cpu.brand_string", "hw.optional")


def cpu_identity() -> str:
    """What -march=native (-mcpu=native) depends on: the CPU's model and its instruction set.
    A library built for one CPU may not run on another (a cache copied to an older Mac):
    each gets its own build."""
    capability = torch.backends.cpu.get_cpu_capability()
    return f"{platform.machine()} {capability} {platform.processor()}{cpu_description()}"


@cache
def cpu_description() -> str:
    """Linux: /proc/cpuinfo's model name and flags (Features on ARM); elsewhere sysctl's.
    Once per process: every load keys on it."""
    try:
        lines = CPUINFO.read_text().splitlines()
    except OSError:
        try:
            done = subprocess.run(SYSCTL, capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return ""
        return done.stdout
    model = ""
    for line in lines:
        if line.startswith(("model name", "flags", "Features")):
            model += line
            if line.startswith(("flags", "Features")):
                break
    return model


def compiler() -> str | None:
    """$CC, else the first of cc, gcc and clang; where torch runs on GNU OpenMP, a GCC before
    a clang, which cannot build the library for torch's threads (openmp_flags)."""
    if os.environ.get("CC"):
        return os.environ["CC"]
    found = [c for c in (shutil.which("cc"), shutil.which("gcc"), shutil.which("clang")) if c]
    if torch_runs_on_libgomp():
        found.sort(key=is_clang)  # stable: the GCCs first, in their order
    return next(iter(found), None)


def serial_reason(cc: str, ops: FusedOps) -> str | None:
    """Why the library runs its C ops on one thread where torch runs on GNU OpenMP, with the
    fix; None where it runs them on torch's threads, or torch's runtime is another."""
    if ops.threaded or not torch_runs_on_libgomp():
        return None
    if is_clang(cc):
        return "clang builds them without OpenMP: set CC=gcc to run them on torch's threads"
    return f"{cc} could not build them with -fopenmp: install GCC's OpenMP (libgomp)"


def library_path(cc: str) -> Path:
    key = hashlib.sha256()
    flags = " ".join([*FLAGS, *openmp_flags(cc)]).encode()
    for part in (SOURCE.read_bytes(), cc.encode(), flags, cpu_identity()):
        key.update(part if isinstance(part, bytes) else part.encode())
        key.update(b"\0")
    suffix = ".dylib" if platform.system() == "Darwin" else ".so"
    return cache_root() / "fused-ops" / f"fused-ops-{key.hexdigest()[:24]}{suffix}"


def is_built() -> bool:
    cc = compiler()
    return cc is not None and library_path(cc).exists()


def build(cc: str, out: Path) -> str | None:
    """Compile into `out` (atomically: two processes may build at once); None, or the error."""
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, suffix=out.suffix)
    os.close(fd)
    error = ""
    try:
        # an older clang may not know -mcpu=native; a compiler without OpenMP builds it serial
        tries = [(tuple(n), o) for o in (openmp_flags(cc), ()) for n in (native_flags(), [])]
        for native, omp in dict.fromkeys(tries):
            cmd = [cc, *FLAGS, *omp, *native, str(SOURCE), "-o", tmp, "-lm"]
            try:
                done = subprocess.run(cmd, capture_output=True, text=True, timeout=BUILD_TIMEOUT_S)
            except (OSError, subprocess.TimeoutExpired) as exc:
                return f"{cc} could not build {SOURCE.name} ({exc}); set CC to a C compiler"
            if done.returncode == 0:
                os.replace(tmp, out)
                return None
            error = (done.stderr.strip().splitlines() or ["no message"])[0]
        return f"{cc} could not build {SOURCE.name} ({error}); set CC to a C compiler"
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def load_fused_ops() -> FusedOps | str:
    """The library, built if this CPU has none yet; or the one-line reason there is none."""
    if os.environ.get(OFF_SWITCH, "1") == "0":
        return f"turned off by {OFF_SWITCH}=0"
    cc = compiler()
    if cc is None:
        return "no C compiler (cc, gcc or clang) found: install one to fuse them"
    path = library_path(cc)
    if not path.exists():
        try:
            error = build(cc, path)
        except OSError as exc:  # an unwritable cache
            error = f"cannot write {path.parent} ({exc.strerror}); set INFERTOP_CACHE_DIR"
        if error:
            return error
    try:
        ops = opened(path)
    except OSError as exc:  # a damaged file in the cache
        return f"cannot load {path} ({exc}); delete it to rebuild"
    return replace(ops, serial=serial_reason(cc, ops))


@cache
def opened(path: Path) -> FusedOps:
    """The library at `path`, opened once per process."""
    lib = ctypes.CDLL(str(path))
    funcs = {}
    for name, argtypes in SIGNATURES.items():
        func = getattr(lib, name)
        func.argtypes, func.restype = argtypes, None
        funcs[name] = func
    own_sgemv = ctypes.cast(lib.own_sgemv, ctypes.c_void_p).value
    assert own_sgemv is not None
    lib.built_with_openmp.restype = ctypes.c_int64
    threaded = bool(lib.built_with_openmp())
    return FusedOps(library=path, own_sgemv=own_sgemv, threaded=threaded, **funcs)
