"""Serving runs over HTTP: ``pool`` loads them (one base model shared by the adapters trained from it),
``batcher`` groups concurrent requests into micro-batches, ``app`` is the FastAPI app and its uvicorn runner."""
