"""Export a run as a plain transformers model: the adapter folded into the base weights, the trained head, the
labels in ``config.json`` and the tokenizer, so ``transformers.pipeline("text-classification", model=DIR)`` (or
``AutoModelForSequenceClassification``) loads it with neither lightft nor peft installed.

Named ``exporting`` rather than ``export``: ``lightft.export`` is the API function (see ``lightft/__init__.py``).
"""

from __future__ import annotations

import os
from pathlib import Path

from lightft import rundir
from lightft.errors import LightftError

CARD = "README.md"


def export(run_dir: str | os.PathLike, output: str | os.PathLike, *, base_model: str | os.PathLike | None = None,
           quiet: bool = True) -> Path:
    """Write ``run_dir``'s classifier to ``output`` as a transformers model directory (fp32 safetensors, config.json
    with the run's labels, tokenizer cut at the run's ``--max-length``, a model card) and return ``output``.
    Mirrors ``lightft export RUN --output DIR``; ``base_model`` is where an adapter run's base model lives now."""
    import torch

    from lightft.model.load import quiet_transformers
    from lightft.predict import Predictor

    run = rundir.require_run_dir(os.fspath(run_dir))
    output = Path(os.fspath(output))
    target = output.resolve()
    inside = next((d for d in (target, *target.parents) if (d / rundir.CONFIG).is_file() and (d / rundir.LABELS).is_file()),
                  None)
    if inside is not None:
        raise LightftError(f"--output {output} is inside the run directory {inside}; pass a folder outside it")
    rundir.check_output_free(output)
    predictor = Predictor(run, device="cpu", precision="fp32", base_model=base_model)
    model = predictor.model
    if not hasattr(model, "save_pretrained") or type(model).__module__.startswith("peft"):
        raise LightftError(f"run {run} was trained with {predictor.config.method}, whose trained virtual tokens are not "
                           "weights of the model and cannot be folded into them, so a plain transformers model cannot "
                           "hold it; predict with `lightft predict`, or load the adapter with peft's "
                           "PeftModel.from_pretrained")
    model.config.id2label = {i: str(name) for i, name in enumerate(predictor.labels.names)}
    model.config.label2id = {str(name): i for i, name in enumerate(predictor.labels.names)}
    tokenizer = predictor.tokenizer
    tokenizer.model_max_length = predictor.config.max_length  # pipeline(..., truncation=True) cuts where training did
    metrics = rundir.read_json(run / rundir.METRICS) if (run / rundir.METRICS).is_file() else {}
    with rundir.staged_directory(output) as stage:
        with torch.no_grad(), quiet_transformers():  # no "Writing model shards" bar
            model.float().save_pretrained(str(stage.path), safe_serialization=True)
        tokenizer.save_pretrained(str(stage.path))
        rundir.atomic_write_text(stage.path / CARD, _card(run, predictor, metrics, output))
    return stage.final


def _card(run: Path, predictor, metrics: dict, output: Path) -> str:
    cfg, ev = predictor.config, metrics.get("eval", {})
    scores = (f"On its test split ({ev['n']} rows) the run measured accuracy {100 * ev['accuracy']:.2f}% and macro-F1 "
              f"{100 * ev['macro_f1']:.2f}%." if ev.get("n") else "")
    merged = "" if cfg.method == "full" else f" with its {cfg.method} weights folded into the base weights"
    from lightft.model.load import looks_local

    # Hugging Face Hub metadata: what the Hub's widgets and search read (a local base model's path is not named)
    base = "" if looks_local(cfg.model) else f"base_model: {cfg.model}\n"
    shown = Path(cfg.model.rstrip("/")).name if looks_local(cfg.model) else cfg.model  # nor this machine's folders
    front = (f"---\nlibrary_name: transformers\npipeline_tag: text-classification\n{base}"
             f"tags:\n- lightft\n- {cfg.method}\n- text-classification\n---\n\n")
    return (f"{front}# {run.name}\n\n"
            f"A text classifier exported by lightft from the run `{run.name}`: `{shown}` trained on "
            f"`{Path(cfg.data.rstrip('/')).name}` with `--method {cfg.method}`{merged}. {scores}\n\n"
            f"Labels: {', '.join(f'`{n}`' for n in predictor.labels.names)}. Texts were cut at {cfg.max_length} "
            "tokens in training; `truncation=True` does the same.\n\n"
            "```python\nfrom transformers import pipeline\n\n"
            f"classify = pipeline(\"text-classification\", model=\"{output}\", truncation=True)\n"
            "classify([\"some text\"])\n```\n")
