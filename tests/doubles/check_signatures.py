"""Compare the torch_npu test double with the real torch_npu profiler sources.

Usage:
    python tests/doubles/check_signatures.py /tmp/npu
    (the directory holding the unzipped wheel's `torch_npu/`, or `torch_npu/` itself)
    python tests/doubles/check_signatures.py torch_npu-2.13.0-cp311-...whl
    (the wheel itself: its torch_npu/profiler/ is read from the archive; .ci/run does this
    with the release the npu extra pins)

The real package cannot be imported without Ascend CANN, so its files are parsed with
`ast`. Checked against torch_npu 2.14.0 and 2.13.0 (the npu extra's pin, for torch 2.13.0)
(wheels torch_npu-2.1x.0-cp311-cp311-manylinux_2_28_x86_64.whl):

1. Statically, for every function/method listed in FUNCTIONS: parameter names, order,
   kinds (positional / keyword-only / *args / **kwargs), annotations (source text),
   defaults (resolved through `Constant.X` / `ExportType.X` class attributes to their
   values), return annotation, and classmethod/staticmethod/property decorators.
2. For every option class in CLASSES (ProfilerLevel, AiCMetrics, ExportType, HostSystem,
   ProfilerAction): member names, order and resolved values.
3. `__all__` of torch_npu/profiler/__init__.py.
4. At run time, the imported double: `inspect.signature` of each function (through the
   recording/exception decorators) has the real names, kinds and default values, and
   every name of the real `__all__` is importable.

ProfilerActivity is compiled C++ in the wheel (pybind11, torch_npu/_C.*.so), so it is
checked against the members bound in Ascend/pytorch torch_npu/csrc/profiler/init.cpp
(CPU, NPU) with values from npu_profiler.h (NONE = 0, CPU, NPU), not against the wheel.

Prints each mismatch and exits 1 if there is any, else prints "0 mismatches".
"""

from __future__ import annotations

import ast
import inspect
import os
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DOUBLES = Path(__file__).resolve().parent

# (real file, double file, qualified name); paths relative to the torch_npu package.
FUNCTIONS: list[tuple[str, str, str]] = [
    ("profiler/profiler.py", "profiler/profiler.py", name)
    for name in (
        "_KinetoProfile.__init__",
        "_KinetoProfile.__del__",
        "_KinetoProfile.start",
        "_KinetoProfile.stop",
        "_KinetoProfile.export_chrome_trace",
        "_KinetoProfile.add_metadata",
        "_KinetoProfile.add_metadata_json",
        "_KinetoProfile.export_stacks",
        "_KinetoProfile.export_memory_timeline",
        "tensorboard_trace_handler",
        "profile.__init__",
        "profile.__enter__",
        "profile.__exit__",
        "profile.__del__",
        "profile.start",
        "profile.stop",
        "profile.step",
        "profile.set_custom_trace_id_callback",
        "profile.get_trace_id",
        "profile.enable_profiler_in_child_thread",
        "profile.disable_profiler_in_child_thread",
        "analyse",
    )
]
FUNCTIONS += [
    ("profiler/experimental_config.py", "profiler/experimental_config.py", name)
    for name in (
        "supported_profiler_level",
        "supported_ai_core_metrics",
        "supported_export_type",
        "_ExperimentalConfig.__init__",
        "_ExperimentalConfig.__call__",
        "_ExperimentalConfig.export_type",
        "_ExperimentalConfig.with_gc",
        "_ExperimentalConfig.gc_detect_threshold",
        "_ExperimentalConfig.tx_enabled",
    )
]
FUNCTIONS += [
    ("profiler/scheduler.py", "profiler/scheduler.py", name)
    for name in ("Schedule.__init__", "Schedule.__call__", "_default_schedule_fn")
]
FUNCTIONS += [
    ("profiler/profiler_interface.py", "profiler/profiler_interface.py", name)
    for name in ("supported_activities", "_ProfInterface.__init__", "_ProfInterface.analyse")
]

CLASSES: list[tuple[str, str, str]] = [
    ("profiler/experimental_config.py", "profiler/experimental_config.py", name)
    for name in ("ProfilerLevel", "AiCMetrics", "ExportType", "HostSystem")
] + [("profiler/scheduler.py", "profiler/scheduler.py", "ProfilerAction")]

# Files whose classes resolve `X.Y` defaults and members.
REAL_SYMBOL_FILES = [
    "profiler/analysis/prof_common_func/_constant.py",
    "profiler/experimental_config.py",
    "profiler/scheduler.py",
]
DOUBLE_SYMBOL_FILES = [
    "profiler/_common.py",
    "profiler/experimental_config.py",
    "profiler/scheduler.py",
]

# Runtime objects of the double for FUNCTIONS, as "module:qualname".
RUNTIME_MODULES = {
    "profiler/profiler.py": "torch_npu.profiler.profiler",
    "profiler/experimental_config.py": "torch_npu.profiler.experimental_config",
    "profiler/scheduler.py": "torch_npu.profiler.scheduler",
    "profiler/profiler_interface.py": "torch_npu.profiler.profiler_interface",
}

# From Ascend/pytorch C++ sources, not from the wheel (see module docstring).
PROFILER_ACTIVITY = {"CPU": 1, "NPU": 2}


@dataclass(frozen=True)
class Param:
    kind: str
    name: str
    annotation: str | None
    default: str | None  # canonical text, None when there is no default


@dataclass(frozen=True)
class Spec:
    params: tuple[Param, ...]
    returns: str | None
    decorators: tuple[str, ...]


def parse(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), filename=str(path))


def class_table(root: Path, files: list[str]) -> dict[str, dict[str, ast.expr]]:
    """{class name: {attribute: value expression}} over the given files."""
    table: dict[str, dict[str, ast.expr]] = {}
    for rel in files:
        for node in ast.walk(parse(root / rel)):
            if isinstance(node, ast.ClassDef):
                attrs = table.setdefault(node.name, {})
                for stmt in node.body:
                    if (
                        isinstance(stmt, ast.Assign)
                        and len(stmt.targets) == 1
                        and isinstance(stmt.targets[0], ast.Name)
                    ):
                        attrs[stmt.targets[0].id] = stmt.value
    return table


def canonical(expr: ast.expr, table: dict[str, dict[str, ast.expr]], depth: int = 0) -> str:
    """A comparable text for a default value: literal repr, else resolved class attribute."""
    try:
        return repr(ast.literal_eval(expr))
    except ValueError:
        pass
    if (
        depth < 10
        and isinstance(expr, ast.Attribute)
        and isinstance(expr.value, ast.Name)
        and expr.attr in table.get(expr.value.id, {})
    ):
        return canonical(table[expr.value.id][expr.attr], table, depth + 1)
    return ast.unparse(expr)


def find_def(module: ast.Module, qualname: str) -> ast.FunctionDef | None:
    body: list[ast.stmt] = module.body
    parts = qualname.split(".")
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        found = None
        for node in body:
            if last and isinstance(node, ast.FunctionDef) and node.name == part:
                found = node
            elif not last and isinstance(node, ast.ClassDef) and node.name == part:
                found = node
        if found is None:
            return None
        if last:
            assert isinstance(found, ast.FunctionDef)
            return found
        body = found.body
    return None


def spec_of(fn: ast.FunctionDef, table: dict[str, dict[str, ast.expr]]) -> Spec:
    a = fn.args
    params: list[Param] = []

    def ann(node: ast.expr | None) -> str | None:
        return None if node is None else ast.unparse(node)

    positional = a.posonlyargs + a.args
    defaults: list[ast.expr | None] = [None] * (len(positional) - len(a.defaults))
    defaults += list(a.defaults)
    for i, (arg, default) in enumerate(zip(positional, defaults, strict=True)):
        kind = "positional_only" if i < len(a.posonlyargs) else "positional_or_keyword"
        params.append(
            Param(
                kind, arg.arg, ann(arg.annotation), canonical(default, table) if default else None
            )
        )
    if a.vararg:
        params.append(Param("var_positional", a.vararg.arg, ann(a.vararg.annotation), None))
    for arg, default in zip(a.kwonlyargs, a.kw_defaults, strict=True):
        params.append(
            Param(
                "keyword_only",
                arg.arg,
                ann(arg.annotation),
                canonical(default, table) if default else None,
            )
        )
    if a.kwarg:
        params.append(Param("var_keyword", a.kwarg.arg, ann(a.kwarg.annotation), None))
    decorators = tuple(
        sorted(
            d.id
            for d in fn.decorator_list
            if isinstance(d, ast.Name) and d.id in ("classmethod", "staticmethod", "property")
        )
    )
    return Spec(tuple(params), ann(fn.returns), decorators)


def find_class(module: ast.Module, name: str) -> ast.ClassDef | None:
    for node in module.body:
        if isinstance(node, ast.ClassDef) and node.name == name:
            return node
    return None


def members_of(cls: ast.ClassDef, table: dict[str, dict[str, ast.expr]]) -> list[tuple[str, str]]:
    out = []
    for stmt in cls.body:
        if (
            isinstance(stmt, ast.Assign)
            and len(stmt.targets) == 1
            and isinstance(stmt.targets[0], ast.Name)
        ):
            out.append((stmt.targets[0].id, canonical(stmt.value, table)))
    return out


def dunder_all(module: ast.Module) -> list[str]:
    for node in module.body:
        if (
            isinstance(node, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets)
            and isinstance(node.value, (ast.List, ast.Tuple))
        ):
            return [ast.literal_eval(e) for e in node.value.elts]
    return []


def describe(spec: Spec) -> str:
    parts = []
    for p in spec.params:
        text = p.name if p.annotation is None else f"{p.name}: {p.annotation}"
        if p.default is not None:
            text += f" = {p.default}"
        parts.append(f"[{p.kind}] {text}")
    deco = f" @{','.join(spec.decorators)}" if spec.decorators else ""
    return f"({', '.join(parts)}) -> {spec.returns}{deco}"


def runtime_value(canonical_text: str) -> Any:
    try:
        return ast.literal_eval(canonical_text)
    except ValueError:
        return eval(canonical_text, {"os": os})  # e.g. "os.cpu_count() // 2"


def resolve_runtime(dotted_module: str, qualname: str) -> Any:
    obj: Any = __import__(dotted_module, fromlist=["_"])
    for part in qualname.split("."):
        raw = inspect.getattr_static(obj, part)
        obj = raw.fget if isinstance(raw, property) else getattr(obj, part)
    return obj


def unpack_profiler(wheel: Path, into: Path) -> Path:
    """torch_npu/profiler/ out of the wheel (the rest is compiled code and 40 MB)."""
    with zipfile.ZipFile(wheel) as z:
        z.extractall(into, [n for n in z.namelist() if n.startswith("torch_npu/profiler/")])
    return into


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__)
        return 2
    real = Path(argv[1]).resolve()
    if real.suffix == ".whl":
        real = unpack_profiler(real, Path(tempfile.mkdtemp(prefix="torch_npu-src-")))
    if (real / "torch_npu").is_dir():
        real = real / "torch_npu"
    double = DOUBLES / "torch_npu"
    real_table = class_table(real, REAL_SYMBOL_FILES)
    double_table = class_table(double, DOUBLE_SYMBOL_FILES)
    mismatches: list[str] = []
    checked = 0

    real_specs: dict[tuple[str, str], Spec] = {}
    for real_rel, double_rel, qualname in FUNCTIONS:
        checked += 1
        real_fn = find_def(parse(real / real_rel), qualname)
        double_fn = find_def(parse(double / double_rel), qualname)
        where = f"{real_rel}:{qualname}"
        if real_fn is None:
            mismatches.append(f"{where}: not found in the real source")
            continue
        if double_fn is None:
            mismatches.append(f"{where}: missing from the double")
            continue
        real_spec = spec_of(real_fn, real_table)
        double_spec = spec_of(double_fn, double_table)
        real_specs[(real_rel, qualname)] = real_spec
        if real_spec != double_spec:
            mismatches.append(
                f"{where}:\n    real:   {describe(real_spec)}\n    double: {describe(double_spec)}"
            )

    for real_rel, double_rel, name in CLASSES:
        checked += 1
        real_cls = find_class(parse(real / real_rel), name)
        double_cls = find_class(parse(double / double_rel), name)
        if real_cls is None or double_cls is None:
            mismatches.append(f"{real_rel}:{name}: class missing (real or double)")
            continue
        real_members = members_of(real_cls, real_table)
        double_members = members_of(double_cls, double_table)
        if real_members != double_members:
            mismatches.append(
                f"{real_rel}:{name} members:\n    real:   {real_members}\n"
                f"    double: {double_members}"
            )

    checked += 1
    real_all = dunder_all(parse(real / "profiler/__init__.py"))
    double_all = dunder_all(parse(double / "profiler/__init__.py"))
    if real_all != double_all:
        mismatches.append(f"profiler/__init__.py __all__: real {real_all} != double {double_all}")

    # Runtime: the importable double, through its decorators.
    sys.path.insert(0, str(DOUBLES))
    import torch_npu.profiler as double_profiler

    if not Path(double_profiler.__file__).resolve().is_relative_to(DOUBLES):
        mismatches.append(f"imported torch_npu is not the double: {double_profiler.__file__}")
    for name in real_all:
        checked += 1
        if not hasattr(double_profiler, name):
            mismatches.append(f"torch_npu.profiler.{name}: not importable from the double")
    for (real_rel, qualname), spec in real_specs.items():
        checked += 1
        obj = resolve_runtime(RUNTIME_MODULES[real_rel], qualname)
        got = [
            (p.name, p.kind.name.lower(), p.default)
            for p in inspect.signature(obj).parameters.values()
        ]
        want = [
            (
                p.name,
                p.kind,
                inspect.Parameter.empty if p.default is None else runtime_value(p.default),
            )
            for p in spec.params
        ]
        if "classmethod" in spec.decorators:
            want = want[1:]  # bound to the class: `cls` is not in the signature
        if got != want:
            mismatches.append(f"runtime {qualname}:\n    real:   {want}\n    double: {got}")

    checked += 1
    activity = {m.name: int(m.value) for m in double_profiler.ProfilerActivity}
    if activity != PROFILER_ACTIVITY:
        mismatches.append(f"ProfilerActivity: double {activity} != C++ {PROFILER_ACTIVITY}")

    for line in mismatches:
        print("MISMATCH", line)
    print(f"{checked} checks, {len(mismatches)} mismatches")
    if not mismatches:
        print("0 mismatches")
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
