"""The torch backend: its engine, the Llama-family model, the compiled decode step and the
torch devices (CPU, CUDA, Ascend NPU through torch_npu)."""
