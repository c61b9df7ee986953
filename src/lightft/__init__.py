"""lightft: parameter-efficient fine-tuning of pretrained text encoders for classification.

The Python API mirrors the CLI::

    import lightft
    run = lightft.train(model="path/to/encoder", data="path/to/data", method="lora", epochs=3)
    lightft.evaluate("path/to/encoder", "path/to/data")          # the out-of-the-box baseline
    lightft.load(run.path).predict(["a great film", "a dull film"])
    lightft.load(run.path).predict(lightft.read_texts("reviews.csv"))   # what `predict --file` reads
    lightft.write_predictions("out.csv", results, lightft.read_inputs("reviews.csv").columns)   # `--output out.csv`
    lightft.compare("baseline,lora,full", model=..., data=...)
    lightft.export(run.path, "models/mine")   # a plain transformers model: transformers.pipeline loads it
    lightft.serve({"sentiment": run.path}, port=8000)   # HTTP, micro-batched (pip install 'lightft[serve]')

The names below are imported on first use, so ``import lightft`` (and ``lightft --help``) does not pay for
torch and transformers until something needs them.
"""

from __future__ import annotations

import importlib
import typing

from lightft.config import TrainConfig
from lightft.errors import LightftError

if typing.TYPE_CHECKING:
    from lightft.comparison import Comparison, compare
    from lightft.exporting import export
    from lightft.pipeline import RunResult, evaluate, train
    from lightft.prediction_table import write_predictions
    from lightft.predict import Predictor, load, read_inputs, read_texts
    from lightft.serving.app import serve

__version__ = "0.1.0"
_LAZY = {"compare": "lightft.comparison", "Comparison": "lightft.comparison", "evaluate": "lightft.pipeline",
         "train": "lightft.pipeline", "RunResult": "lightft.pipeline", "load": "lightft.predict",
         "Predictor": "lightft.predict", "read_texts": "lightft.predict", "read_inputs": "lightft.predict",
         "write_predictions": "lightft.prediction_table", "export": "lightft.exporting",
         "serve": "lightft.serving.app"}
__all__ = ["LightftError", "TrainConfig", *_LAZY]


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module 'lightft' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
