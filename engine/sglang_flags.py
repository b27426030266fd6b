"""bench_one_batch's flags that `infertop bench` cannot honour: each gets one line saying so
and what to use instead, not argparse's generic error. Flags with SGLang's name that infertop
does honour are declared on the fields they fill (`aliases` in engine/config.py and
engine/profiling/request.py)."""

from __future__ import annotations

SERVER = (
    "infertop runs one process on one device; for {what}, start an SGLang or vLLM server "
    "with it and run `infertop bench --server URL`"
)
WHY: dict[str, str] = {
    "--correctness-test": "infertop bench measures speed, not outputs; compare outputs with "
    "`python -m sglang.bench_one_batch --correctness-test` or transformers",
    "--cut-len": "it only applies to --correctness-test, which infertop bench does not run",
    "--tp-size": SERVER.format(what="tensor parallelism"),
    "--tensor-parallel-size": SERVER.format(what="tensor parallelism"),
    "--tp": SERVER.format(what="tensor parallelism"),
    "--dp-size": SERVER.format(what="data parallelism"),
    "--data-parallel-size": SERVER.format(what="data parallelism"),
    "--dp": SERVER.format(what="data parallelism"),
    "--pp-size": SERVER.format(what="pipeline parallelism"),
    "--ep-size": SERVER.format(what="expert parallelism"),
    "--nnodes": SERVER.format(what="several nodes"),
    "--mem-fraction-static": "infertop sizes the KV cache for the batch it runs; leave it out",
    "--cuda-graph-max-bs": "infertop does not capture CUDA graphs; leave it out (--compile "
    "compiles the decode step on CPUs)",
    "--disable-cuda-graph": "infertop does not capture CUDA graphs; leave it out",
    "--attention-backend": "infertop has one attention (torch's scaled_dot_product_attention); "
    "leave it out",
    "--quantization": "infertop runs float32, bfloat16 or float16 weights; use --dtype",
    "--json-model-override-args": "a changed model is a local Hugging Face directory with its "
    "config.json edited; pass it to --model-path",
    "--tokenizer-path": "infertop feeds token ids and needs no tokenizer; leave it out",
    "--disable-radix-cache": "infertop has no prefix cache to disable; leave it out",
    "--prompt-filename": "infertop bench feeds random token ids of --input-len; leave it out",
    "--log-decode-step": "every decode step is in the live screen (`infertop`) and the "
    "traces; leave it out",
}


def refused(argv: list[str]) -> str | None:
    """The one line for the first SGLang-only flag in argv (abbreviations as argparse takes
    them: `--correct`, `--mem-frac`), else None."""
    for arg in argv:
        if not arg.startswith("--"):
            continue
        name = arg.split("=", 1)[0]
        hits = [flag for flag in WHY if flag == name] or [f for f in WHY if f.startswith(name)]
        if len(hits) == 1 and len(name) > 4:
            flag = hits[0]
            return f"{flag} is bench_one_batch's and infertop cannot honour it: {WHY[flag]}"
        if name in WHY:
            return f"{name} is bench_one_batch's and infertop cannot honour it: {WHY[name]}"
    return None
