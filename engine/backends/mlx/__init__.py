"""The MLX backend: its engine, the Llama-family model and MLX's device (Metal on Apple
silicon, the CPU elsewhere)."""
