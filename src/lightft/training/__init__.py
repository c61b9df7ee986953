"""Train: the optimisation loop (on accelerate), its optimizer/schedule, and best-epoch selection."""

from lightft.training.loop import FitResult, Hyper, fit

__all__ = ["FitResult", "Hyper", "fit"]
