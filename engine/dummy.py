"""Seeded stand-ins for what this machine cannot download: dummy weights and random prompts,
the same numbers in every backend (drawn with numpy, then handed to torch or MLX).

Weights are uniform on [-b, b] with std 0.02 (SGLang's dummy weights are uniform too), one
block of values per tensor, repeated: drawing every value took 2.8 s of a 5.3 s load for a
0.5B model and ~45 s for 8B on this CPU; copying a block runs at memory speed. Norm weights
are ones.
"""

from __future__ import annotations

import zlib

import numpy as np

DUMMY_BOUND = 0.02 * 3**0.5
DUMMY_BLOCK = 1 << 16  # values drawn per tensor; larger tensors repeat them


def is_norm(name: str) -> bool:
    return name.endswith("norm.weight")


def dummy_block(seed: int, name: str, numel: int) -> np.ndarray:
    """The values of tensor `name`: min(numel, DUMMY_BLOCK) of them, to be repeated over it.
    Seeded by the name too, so the order a backend builds its tensors in does not matter."""
    rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
    return rng.uniform(-DUMMY_BOUND, DUMMY_BOUND, min(numel, DUMMY_BLOCK)).astype(np.float32)


def random_prompt_ids(vocab_size: int, batch_size: int, input_len: int, seed: int) -> np.ndarray:
    """(batch, input_len) token ids, the same for a seed in every backend."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, vocab_size, (batch_size, input_len), dtype=np.int64)
