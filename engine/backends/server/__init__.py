"""The third backend: a running vLLM, SGLang or OpenAI-compatible server, driven over HTTP.

The worker thread becomes a load generator: each run is a static batch of concurrent
streaming requests, timed on the client; the server's own metrics and profiler are reached
through its routes."""
