"""One folder per backend: torch (CPU, CUDA, Ascend NPU) and mlx (Metal, or the CPU)."""
