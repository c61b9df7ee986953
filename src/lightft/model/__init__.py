"""Model: load the encoder and tokenizer, find the classifier head, and run it padding-free on GPU."""

from lightft.model.heads import head_module_names
from lightft.model.load import load_model, load_tokenizer
from lightft.model.forward import Forward

__all__ = ["Forward", "head_module_names", "load_model", "load_tokenizer"]
