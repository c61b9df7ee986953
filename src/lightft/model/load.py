"""Load an encoder classifier and its tokenizer from a local directory or the hub, with labels from the data."""

from __future__ import annotations

import contextlib
import io
import logging
from pathlib import Path

import torch
import transformers
from safetensors import SafetensorError
from torch import nn
from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

from lightft.data.labels import LabelMap
from lightft.errors import LightftError, first_line
from lightft.hub import require_hub


@contextlib.contextmanager
def quiet_transformers():
    """Silence transformers' load report (the new head is expected to be missing from the checkpoint)."""
    previous = transformers.logging.get_verbosity()
    bars = transformers.utils.logging.is_progress_bar_enabled()
    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()  # "Loading weights" bars; lightft shows its own
    logging.getLogger("transformers").setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        transformers.logging.set_verbosity(previous)
        if bars:
            transformers.utils.logging.enable_progress_bar()


TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "vocab.json", "spiece.model",
                   "sentencepiece.bpe.model", "spm.model")


def looks_local(spec: str) -> bool:
    """A path, never a hub id: './x', '/x', '~/x', 'a/b/c'. ('owner/name' may be either.)"""
    return spec.startswith((".", "/", "~")) or spec.count("/") > 1


def cached_hub_id(spec: str) -> bool:
    """``spec`` names a model in the local hub cache."""
    try:
        AutoConfig.from_pretrained(spec, local_files_only=True)
        return True
    except (OSError, ValueError):
        return False


def resolve_model(spec: str, flag: str = "--model") -> tuple[str, bool]:
    """Return (name_or_path, local_files_only). A hub id already in the local cache loads offline. ``flag`` is
    the option errors tell the user to fix."""
    path = Path(spec).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise LightftError(f"model directory {path} has no config.json; pass a directory saved with save_pretrained")
        try:
            config = AutoConfig.from_pretrained(str(path), local_files_only=True)
        except (OSError, ValueError, KeyError) as exc:
            raise LightftError(f"model directory {path} has a config.json transformers cannot read "
                               f"({first_line(exc)}); save the model again with save_pretrained") from None
        _require_encoder(config, spec, flag)
        return str(path.resolve()), True
    if path.exists():
        raise LightftError(f"model {spec!r} is a file; pass the directory that holds config.json and the weights "
                           f"(saved with save_pretrained), or a hub id, with {flag}")
    if looks_local(spec):
        raise LightftError(f"model {spec!r} not found; pass an existing model directory or a hub id with {flag}")
    try:
        config = AutoConfig.from_pretrained(spec, local_files_only=True)
    except OSError:
        require_hub("model", spec, flag)
        return spec, False
    _require_encoder(config, spec, flag)
    return spec, True


ENCODER_LIKE = ("xlnet",)  # bidirectional over the whole text, with a sequence-classification head: not refused


def _require_encoder(config, spec: str, flag: str) -> None:
    """Decoders (GPT-2, Llama, ...) and encoder-decoders (T5, BART) fail deep inside training otherwise."""
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES, MODEL_FOR_MASKED_LM_MAPPING_NAMES

    kind = getattr(config, "model_type", None)
    if getattr(config, "is_encoder_decoder", False):
        what = "an encoder-decoder"
    elif (kind in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES and kind not in MODEL_FOR_MASKED_LM_MAPPING_NAMES
          and kind not in ENCODER_LIKE):
        what = "a decoder (a text generator)"
    else:
        return
    raise LightftError(f"model {spec!r} is a {kind} model, {what}; lightft fine-tunes encoders such as BERT, "
                       f"RoBERTa, DeBERTa, ELECTRA or MiniLM: pass one with {flag}")


def load_tokenizer(spec: str):
    name, local_only = resolve_model(spec)
    if local_only and Path(name).is_dir() and not any((Path(name) / f).is_file() for f in TOKENIZER_FILES):
        raise LightftError(f"model directory {name} has no tokenizer files (none of {', '.join(TOKENIZER_FILES)}); "
                           "save the model's tokenizer there with tokenizer.save_pretrained(DIR)")
    try:
        with quiet_transformers():
            return AutoTokenizer.from_pretrained(name, local_files_only=local_only)
    except (OSError, ValueError) as exc:
        raise LightftError(f"could not load a tokenizer from {spec!r}: {str(exc).splitlines()[0]}") from None


def _require_safetensors(directory: Path) -> None:
    """Weights are read from safetensors only: a pickle (``pytorch_model.bin``) can run code when loaded."""
    if not any(directory.glob("*.safetensors")):
        found = sorted(p.name for p in directory.iterdir() if p.suffix in (".bin", ".pt", ".pth", ".ckpt"))
        if not found:
            raise LightftError(f"model directory {directory} has no weights (no .safetensors file); save the model "
                               "there with model.save_pretrained(DIR)")
        raise LightftError(
            f"model directory {directory} has no .safetensors weights (found: {', '.join(found)}); "
            "lightft reads safetensors only, since pickled weights can run code: convert them once where you trust "
            "the file, with AutoModel.from_pretrained(DIR).save_pretrained(NEW_DIR)"
        )


def position_limit(model: nn.Module) -> int | None:
    """How many tokens the absolute position embeddings can number (None: relative or rotary positions)."""
    embeddings = getattr(model.get_submodule(model.base_model_prefix), "embeddings", None)
    table = getattr(embeddings, "position_embeddings", None)
    if not isinstance(table, nn.Embedding):
        return None
    offset = table.padding_idx + 1 if table.padding_idx is not None else 0  # RoBERTa, XLM-R, MPNet count from pad+1
    return table.num_embeddings - offset


def load_model(spec: str, labels: LabelMap, *, seed: int = 42, max_length: int | None = None, **overrides):
    """The encoder with a sequence-classification head sized and named from ``labels``.

    The weights load in fp32 even from a checkpoint saved in bf16 or fp16: transformers 5 would otherwise keep the
    file's dtype, and training would then update half-precision weights directly (AdamW's small steps round away);
    autocast and ``precision`` lower the compute where wanted. The head is initialised from ``seed``, so the baseline
    and every method start from the same head. A checkpoint
    that already has a head for another number of classes, or that names other labels, gets a fresh one; one that
    names the data's labels in another order is reordered (``_align_head``). ``max_length`` (tokens per text) is
    checked against the model's position embeddings.
    """
    name, local_only = resolve_model(spec)
    if local_only and Path(name).is_dir():
        _require_safetensors(Path(name))
    saved = AutoConfig.from_pretrained(name, local_files_only=local_only)
    if not local_only:  # a hub id fetched now: its config is checked like a local one's, before the weights come
        _require_encoder(saved, spec, "--model")
    torch.manual_seed(seed)
    try:
        with quiet_transformers():
            model = AutoModelForSequenceClassification.from_pretrained(
                name,
                local_files_only=local_only,
                use_safetensors=True,
                ignore_mismatched_sizes=True,
                num_labels=len(labels),
                id2label=labels.id2label,
                label2id=labels.label2id,
                **{"dtype": torch.float32, **overrides},  # fp32 master weights, whatever dtype the file holds
            )
    except SafetensorError as exc:
        raise LightftError(f"model {spec!r} has damaged weights ({first_line(exc)}); download or save "
                           "it again") from None
    except (OSError, ValueError) as exc:
        raise LightftError(f"could not load model {spec!r} for sequence classification: {str(exc).splitlines()[0]}") from None
    check_max_length(model, max_length, spec)
    _align_head(model, saved, labels, seed)
    return model


def _align_head(model: nn.Module, saved, labels: LabelMap, seed: int) -> None:
    """A checkpoint's own classifier head, kept when it has as many classes as the data, read by label name: its
    output rows reordered to the data's label order when it names the same labels (a hub classifier saved with
    id2label {0: 'positive', 1: 'negative'} on data sorted negative, positive), and started afresh from ``seed``,
    like a head for another number of classes, when it names other labels. Unnamed heads (LABEL_0, ...) stay as they
    are: nothing says what their rows mean."""
    if not any(a.endswith("ForSequenceClassification") for a in getattr(saved, "architectures", None) or []):
        return  # no head in the file: the one made here is fresh already
    names = [str(saved.id2label[i]) for i in sorted(saved.id2label)] if getattr(saved, "id2label", None) else []
    wanted = [str(n) for n in labels.names]
    if len(names) != len(wanted) or names == wanted or all(n == f"LABEL_{i}" for i, n in enumerate(names)):
        return
    from lightft.model.heads import head_module_names

    heads = [model.get_submodule(n) for n in head_module_names(model)]
    outputs = [m for h in heads for m in h.modules() if isinstance(m, nn.Linear) and m.out_features == len(wanted)]
    if not outputs:
        return
    if sorted(names) == sorted(wanted):
        order = torch.tensor([names.index(n) for n in wanted])
        with torch.no_grad():
            outputs[-1].weight.copy_(outputs[-1].weight[order])
            if outputs[-1].bias is not None:
                outputs[-1].bias.copy_(outputs[-1].bias[order])
        return
    torch.manual_seed(seed)
    for head in heads:
        for module in head.modules():
            if isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, std=getattr(model.config, "initializer_range", 0.02))
                if module.bias is not None:
                    nn.init.zeros_(module.bias)


def check_max_length(model: nn.Module, max_length: int | None, spec: str) -> None:
    """One line instead of an indexing error deep in the embeddings when texts could outrun the positions."""
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model  # a peft wrapper
    limit = position_limit(inner)
    if max_length is not None and limit is not None and max_length > limit:
        raise LightftError(f"--max-length {max_length} is more than the {limit} positions of model {spec!r} "
                           f"({inner.config.model_type}); pass --max-length {limit} or less")
