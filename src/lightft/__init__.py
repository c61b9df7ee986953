"""lightft: parameter-efficient fine-tuning of pretrained text encoders for classification.

The Python API mirrors the CLI::

    import lightft
    run = lightft.train(model="path/to/encoder", data="path/to/data", method="lora", epochs=3)
    lightft.evaluate("path/to/encoder", "path/to/data")          # the out-of-the-box baseline
    lightft.load(run.path).predict(["a great film", "a dull film"])
    lightft.compare("baseline,lora,full", model=..., data=...)
"""

from lightft.compare import compare
from lightft.config import TrainConfig
from lightft.errors import LightftError
from lightft.pipeline import RunResult, evaluate, train
from lightft.predict import Predictor, load

__version__ = "0.1.0"
__all__ = ["LightftError", "Predictor", "RunResult", "TrainConfig", "compare", "evaluate", "load", "train"]
