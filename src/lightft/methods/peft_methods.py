"""Methods built on peft: adapters (LoRA family, AdaLoRA, IA3, LoHa, LoKr, VeRA, FourierFT, OFT, BOFT) and soft
prompts (prefix, prompt and p-tuning). The classifier head is always trained and saved with the adapter.

A ``PeftMethod`` is ``make_config(cfg, targets, head)`` (the peft config) plus ``find_targets(model, cfg, head)``
(what the method attaches to: module names, or for soft prompts the model's dimensions); attach, save and load are
shared. ``attach`` turns peft's ``ValueError`` for an adapter that does not fit the model (a block size that does not
divide the features, too many frequencies, ...) into a ``LightftError`` naming the method and architecture.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, NamedTuple

import torch
from torch import nn

from lightft.errors import LightftError
from lightft.methods.base import Method, TrainingHooks
from lightft.methods.targets import ia3_targets, resolve_targets, targeted_linears
from lightft.model.heads import head_module_names
from lightft.model.load import load_model, position_limit

# LoRA initialisations that move part of the base weight into the adapter (W_res = W - s·B0·A0). The saved adapter
# is converted so it applies to the *original* base weights: see ``_convert_mutated_init``.
MUTATING_INITS = ("pissa", "olora")
_INITIAL = "_lightft_initial_adapter"  # attribute of the PeftModel holding B0, A0 of a mutating init


def default_targets(model: nn.Module, cfg, head: list[str]):
    return resolve_targets(model, cfg.targets, head)


@dataclass(frozen=True)
class PeftMethod(Method):
    """``make_config(cfg, targets, head)`` builds the peft config; the rest is shared by every peft method."""

    make_config: Callable = None  # type: ignore[assignment]
    find_targets: Callable = default_targets
    fits: Callable | None = None  # fits(model, cfg, targets, head): raise a LightftError if the targets cannot take it
    setup: Callable[[], None] | None = None  # run before peft builds the adapter layers (attach and load)

    def attach(self, model: nn.Module, cfg) -> nn.Module:
        from peft import get_peft_model

        head = head_module_names(model)
        self.check(model, cfg)
        targets = self.find_targets(model, cfg, head)
        if self.fits is not None:
            self.fits(model, cfg, targets, head)
        self.prepare(model)
        try:
            with _quiet_peft():
                peft_model = get_peft_model(model, self.make_config(cfg, targets, head))
        except ValueError as exc:
            raise LightftError(
                f"--method {self.name} does not fit this {model.config.model_type} model: {str(exc).splitlines()[0]}"
            ) from None
        saved = peft_model.peft_config["default"].modules_to_save
        if saved:  # peft appends its own ["classifier", "score"] for SEQ_CLS: keep each name once in adapter_config.json
            peft_model.peft_config["default"].modules_to_save = list(dict.fromkeys(saved))
        init = getattr(peft_model.peft_config["default"], "init_lora_weights", True)
        if isinstance(init, str) and init in MUTATING_INITS:
            from peft import get_peft_model_state_dict

            initial = {k: v.detach().to("cpu", copy=True) for k, v in get_peft_model_state_dict(peft_model).items()
                       if ".lora_A." in k or ".lora_B." in k}
            object.__setattr__(peft_model, _INITIAL, initial)  # a plain attribute: not a parameter, never trained
        return peft_model

    def check(self, model: nn.Module, cfg) -> None:
        """Raise a LightftError when this architecture cannot take the method (before peft touches the model)."""

    def prepare(self, model: nn.Module) -> None:
        """Adjust the plain transformers model before peft wraps it (on attach and on load)."""
        if self.setup is not None:
            self.setup()

    def save(self, model: nn.Module, directory: Path) -> None:
        model.save_pretrained(str(directory), safe_serialization=True)
        card = Path(directory) / "README.md"  # peft's empty model card; report.md describes the run
        if card.exists():
            card.unlink()
        initial = getattr(model, _INITIAL, None)
        if initial is not None:
            _convert_mutated_init(Path(directory), initial)

    def load(self, cfg, labels, directory: Path, *, merge: bool = True) -> nn.Module:
        from peft import PeftModel

        # Both files must be here: peft would otherwise fall back to a pickled adapter_model.bin, or treat the
        # folder's name as a hub repo and try the network.
        missing = [f for f in ("adapter_config.json", "adapter_model.safetensors") if not (Path(directory) / f).is_file()]
        if missing:
            raise LightftError(f"run directory {directory} is incomplete: {' and '.join(missing)} "
                               f"{'is' if len(missing) == 1 else 'are'} missing; restore it from a copy or train it again")
        base = load_model(cfg.model, labels, seed=cfg.seed)
        self.prepare(base)
        with _quiet_peft():
            model = PeftModel.from_pretrained(base, str(directory), local_files_only=True)
        return merged(model) if merge and self.mergeable else model


@contextlib.contextmanager
def _quiet_peft():
    """peft reads transformers' deprecated ``is_gradient_checkpointing`` on every model it wraps: a FutureWarning
    per run that nobody using lightft can act on. Loading an AdaLoRA adapter, peft 0.21 also warns that the keys of
    its saved ``rank_pattern`` match no module: they name the ``lora_E`` parameters, which AdaLoRA resizes from
    itself after the check (its predictions equal the trained model's, tests/methods)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*is_gradient_checkpointing.*", category=FutureWarning)
        warnings.filterwarnings("ignore", message=r"The following rank_pattern keys did not match any targeted module",
                                category=RuntimeWarning)
        yield


def merged(model) -> nn.Module:
    """Fold the adapter into the base weights and return the plain transformers model.

    The trained head copies are put in place first: peft's generic unloading (every tuner but LoRA's family) assumes
    a wrapped head has a ``weight`` of its own and fails on composite heads (RoBERTa's dense + out_proj, ModernBERT's).
    The copy is read from the wrapper itself: what its ``unload_and_optionally_merge_module(merge=False)`` returns
    changed in peft 0.22 (the untrained original instead of the trained copy), which silently gave merged runs an
    untrained head. So the merge is checked: the merged model must give the adapter's logits on a probe batch, or
    loading fails with one line instead of predicting wrongly.
    """
    from peft.utils.other import ModulesToSaveWrapper

    inner = model.get_base_model()
    probe = _probe_batch(inner)
    training = model.training
    with torch.no_grad():
        expected = model.eval()(**probe).logits
    for name, module in list(inner.named_modules()):
        if isinstance(module, ModulesToSaveWrapper):
            parent, _, child = name.rpartition(".")
            trained = module.modules_to_save[module.active_adapters[0]]
            setattr(inner.get_submodule(parent), child, trained)
    plain = model.merge_and_unload()
    with torch.no_grad():
        got = plain(**probe).logits
    if not torch.allclose(got.float(), expected.float(), rtol=1e-3, atol=1e-3):
        from peft import __version__ as peft_version

        gap = (got.float() - expected.float()).abs().max().item()
        raise LightftError(f"merging the adapter into the base weights changed its logits by up to {gap:.3g} with "
                           f"peft {peft_version}, which lightft does not merge correctly; install the peft version the run "
                           "was trained with (metrics.json: environment.peft), or, in Python, load it unmerged with "
                           "lightft.load(run, merge=False)")
    return plain.train(training)


def _probe_batch(model: nn.Module) -> dict[str, torch.Tensor]:
    """Two short rows of arbitrary token ids (one padded) on the model's device, to compare two forms of a model."""
    device = next(model.parameters()).device
    ids = (torch.arange(16, device=device).view(2, 8) * 7 + 3) % model.config.vocab_size
    mask = torch.ones_like(ids)
    mask[1, 5:] = 0
    return {"input_ids": ids, "attention_mask": mask}


def _convert_mutated_init(directory: Path, initial: dict[str, torch.Tensor]) -> None:
    """Rewrite a PiSSA/OLoRA adapter as a plain LoRA adapter of rank 2r on the original base weights.

    Training ran on W_res = W - s·B0·A0 with adapter s·B·A, so the tuned weight is W + s·(B·A - B0·A0)
    = W + s·[B | -B0]·[A ; A0]. This is peft's ``path_initial_model_for_weight_conversion`` done in memory, except
    that it keeps every other tensor of the adapter (peft's conversion drops ``modules_to_save``, i.e. the head).
    Rank and alpha double so the scale s stays the same (with rsLoRA, alpha grows by sqrt(2)).
    """
    from safetensors.torch import load_file, save_file

    weights_file = directory / "adapter_model.safetensors"
    tensors = load_file(str(weights_file))
    for key, value in tensors.items():
        if ".lora_A." in key:
            tensors[key] = torch.cat([value, initial[key].to(value)], dim=0).contiguous()
        elif ".lora_B." in key:
            tensors[key] = torch.cat([value, -initial[key].to(value)], dim=1).contiguous()
    save_file(tensors, str(weights_file), metadata={"format": "pt"})
    config_file = directory / "adapter_config.json"
    config = json.loads(config_file.read_text())
    config["r"] *= 2
    config["lora_alpha"] *= math.sqrt(2) if config.get("use_rslora") else 2
    config["init_lora_weights"] = True
    config_file.write_text(json.dumps(config, indent=2, sort_keys=True))


# --- adapter configs -------------------------------------------------------------------------------------------------

def lora_config(cfg, targets, head, **extra):
    from peft import LoraConfig, TaskType

    init = getattr(cfg, "init", "default")
    return LoraConfig(
        task_type=TaskType.SEQ_CLS,
        r=cfg.rank,
        lora_alpha=cfg.alpha,
        lora_dropout=cfg.dropout,
        target_modules=targets,
        modules_to_save=head,
        init_lora_weights=True if init == "default" else init,
        **extra,
    )


def dora_config(cfg, targets, head):
    return lora_config(cfg, targets, head, use_dora=True)


def rslora_config(cfg, targets, head):
    return lora_config(cfg, targets, head, use_rslora=True)


def adalora_config(cfg, targets, head):
    """AdaLoRA: adapters in SVD form P·diag(E)·Q that start at rank ``ceil(1.5 * --rank)`` and are pruned to an
    average of ``--rank`` per module by importance (``AdaLoraHooks`` runs the schedule). ``total_step`` is a
    placeholder until the loop knows the run's length."""
    from peft import AdaLoraConfig, TaskType

    return AdaLoraConfig(
        task_type=TaskType.SEQ_CLS,
        init_r=math.ceil(1.5 * cfg.rank),
        target_r=cfg.rank,
        lora_alpha=cfg.alpha,
        lora_dropout=cfg.dropout,
        target_modules=targets,
        modules_to_save=head,
        total_step=1,
    )


class AdaLoraHooks(TrainingHooks):
    """AdaLoRA's two additions to the loop, which peft leaves to the caller.

    * The orthogonality penalty on P and Q (peft adds it only to a loss the model computes from labels, and the
      loop computes its own cross-entropy): ``orth_reg_weight`` x the mean Frobenius norm of PP^T - I and Q^TQ - I.
    * Rank allocation: ``update_and_allocate`` after every optimizer update, with the budget schedule laid over
      the run: the first 10% of updates at the initial rank, a cubic decrease to the target budget, and the last
      20% at the final rank pattern (masked ranks have E = 0). Runs of fewer than 10 updates keep the initial rank.
    """

    def __init__(self, model):
        self.peft_model = model
        self.config = model.peft_config["default"]
        self.factors = [(n, p) for n, p in model.named_parameters()
                        if p.requires_grad and (".lora_A." in n or ".lora_B." in n)]
        self.allocate = False
        self.best_pattern = None

    def start(self, total_updates: int) -> None:
        self.allocate = total_updates >= 10
        if self.allocate:
            self.config.total_step = total_updates
            self.config.tinit = max(1, round(0.1 * total_updates))
            self.config.tfinal = max(1, round(0.2 * total_updates))
            self.config.deltaT = max(1, round(total_updates / 100))

    def extra_loss(self, model) -> torch.Tensor | None:
        if not self.factors or self.config.orth_reg_weight == 0:
            return None
        total = 0.0
        for name, p in self.factors:
            gram = p @ p.T if ".lora_A." in name else p.T @ p
            total = total + torch.linalg.matrix_norm(gram - torch.eye(gram.shape[0], device=p.device, dtype=p.dtype))
        return self.config.orth_reg_weight * total / len(self.factors)

    def after_update(self, update: int) -> None:
        if self.allocate:
            self.peft_model.base_model.update_and_allocate(update)

    def on_best(self, model) -> None:
        """The ranks live in the weights being kept. Masking runs every ``deltaT`` updates, and a masked singular
        value that trained back since is part of what this epoch validated, so the pattern is read from the nonzero
        E values themselves, not from the last mask."""
        if not self.config.rank_pattern:  # no pruning yet: every initial rank is live
            self.best_pattern = None
            return
        self.best_pattern = {name: (p.detach() != 0).view(-1).tolist()
                             for name, p in self.peft_model.base_model.model.named_parameters() if ".lora_E." in name}

    def state(self) -> tuple[dict[str, torch.Tensor], dict]:
        """The rank allocator's importance scores (moving averages over updates), the current and the kept rank
        patterns."""
        allocator = self.peft_model.base_model.rankallocator
        tensors = {f"{kind}.{name}": value for kind in ("ipt", "exp_avg_ipt", "exp_avg_unc")
                   for name, value in getattr(allocator, kind).items()}
        return tensors, {"rank_pattern": self.config.rank_pattern, "best_pattern": self.best_pattern}

    def load_state(self, tensors: dict[str, torch.Tensor], values: dict) -> None:
        allocator = self.peft_model.base_model.rankallocator
        device = next(p.device for _, p in self.factors) if self.factors else torch.device("cpu")
        for kind in ("ipt", "exp_avg_ipt", "exp_avg_unc"):
            setattr(allocator, kind, {key[len(kind) + 1:]: value.to(device) for key, value in tensors.items()
                                      if key.startswith(kind + ".")})
        self.config.rank_pattern = values.get("rank_pattern")
        self.best_pattern = values.get("best_pattern")

    def finish(self, model) -> None:
        """Give the restored best weights the rank pattern they had at the best epoch, not the last epoch's: what is
        tested and saved (peft saves only the pattern's ranks) is what was validated. A best epoch before the first
        pruning keeps every initial rank."""
        self.config.rank_pattern = self.best_pattern
        if self.best_pattern:
            self.peft_model.base_model.rankallocator.mask_using_rank_pattern(
                self.peft_model.base_model.model, self.best_pattern)


@dataclass(frozen=True)
class AdaLoraMethod(PeftMethod):
    def training_hooks(self, model) -> TrainingHooks:
        return AdaLoraHooks(model)


def ia3_config(cfg, targets, head):
    from peft import IA3Config, TaskType

    return IA3Config(task_type=TaskType.SEQ_CLS, target_modules=targets.modules,
                     feedforward_modules=targets.feedforward, modules_to_save=head)


def ia3_find_targets(model, cfg, head):
    return ia3_targets(model, cfg.targets, head)


def loha_config(cfg, targets, head):
    from peft import LoHaConfig, TaskType

    return LoHaConfig(task_type=TaskType.SEQ_CLS, r=cfg.rank, alpha=cfg.alpha, target_modules=targets,
                      modules_to_save=head)


def lokr_config(cfg, targets, head):
    from peft import LoKrConfig, TaskType

    return LoKrConfig(task_type=TaskType.SEQ_CLS, r=cfg.rank, alpha=cfg.alpha, target_modules=targets,
                      modules_to_save=head)


def vera_config(cfg, targets, head):
    from peft import TaskType, VeraConfig

    # The frozen random projections are saved with the adapter (save_projection) so loading never depends on
    # regenerating them from the PRNG key.
    return VeraConfig(task_type=TaskType.SEQ_CLS, r=cfg.vera_rank, vera_dropout=cfg.dropout, target_modules=targets,
                      modules_to_save=head, save_projection=True, projection_prng_key=cfg.seed)


FOURIERFT_SCALING = 150.0  # peft's default and the paper's value for RoBERTa on GLUE


def fourierft_config(cfg, targets, head):
    from peft import FourierFTConfig, TaskType

    # init_weights=True starts the spectrum at zero, so step 0 is the frozen model (peft's default draws it at random).
    return FourierFTConfig(task_type=TaskType.SEQ_CLS, n_frequency=cfg.n_frequency, scaling=FOURIERFT_SCALING,
                           random_loc_seed=cfg.seed, target_modules=targets, modules_to_save=head, init_weights=True)


def oft_config(cfg, targets, head):
    from peft import OFTConfig, TaskType

    return OFTConfig(task_type=TaskType.SEQ_CLS, r=0, oft_block_size=cfg.block_size, target_modules=targets,
                     modules_to_save=head)


def block_size_divides(model, cfg, targets, head) -> None:
    """OFT/BOFT split each target's input features into blocks; peft would silently shrink an OFT block size that
    does not divide them, so refuse it here with the sizes that would."""
    sizes = sorted({m.in_features for m in targeted_linears(model, targets, head).values()})
    bad = [n for n in sizes if n % cfg.block_size]
    if bad:
        raise LightftError(
            f"--block-size {cfg.block_size} must divide the input features of every target of --method {cfg.method} "
            f"({', '.join(map(str, sizes))} in this {model.config.model_type} model)"
        )


def boft_config(cfg, targets, head):
    """BOFT with one butterfly factor (block-diagonal orthogonal rotations, exact Cayley parametrisation).

    peft 0.21 builds more than one butterfly factor only when it can JIT-compile its ``fbd_cuda`` extension and
    silently falls back to one factor otherwise, so an adapter with more factors trained on one machine would not
    load on another. One factor is the same everywhere, and ``no_boft_jit`` skips the compile attempt (which peft
    retries for every layer when it fails).
    """
    from peft import BOFTConfig, TaskType

    return BOFTConfig(task_type=TaskType.SEQ_CLS, boft_block_size=cfg.block_size, boft_block_num=0,
                      boft_n_butterfly_factor=1, target_modules=targets, modules_to_save=head)


def no_boft_jit() -> None:
    import peft.tuners.boft.layer as boft_layer

    if getattr(boft_layer, "_FBD_CUDA", None) is None:
        boft_layer._FBD_CUDA = False  # "not available", cached: peft uses torch.block_diag


# --- soft prompts ----------------------------------------------------------------------------------------------------

class PromptDims(NamedTuple):
    """What a soft prompt attaches to: the sizes peft needs (it cannot read all of them from every config)."""

    embedding_dim: int  # the word embeddings (ELECTRA's can be narrower than the hidden size)
    hidden_size: int
    num_heads: int
    num_layers: int


def prompt_dims(model, cfg, head) -> PromptDims:
    c = model.config
    return PromptDims(model.get_input_embeddings().embedding_dim, c.hidden_size, c.num_attention_heads,
                      c.num_hidden_layers)


def _prompt_common(cfg, dims: PromptDims, head, token_dim: int) -> dict[str, Any]:
    from peft import TaskType

    return dict(task_type=TaskType.SEQ_CLS, num_virtual_tokens=cfg.num_virtual_tokens, token_dim=token_dim,
                num_attention_heads=dims.num_heads, num_layers=dims.num_layers, num_transformer_submodules=1,
                modules_to_save=head)


def prefix_config(cfg, dims: PromptDims, head):
    from peft import PrefixTuningConfig

    # Trainable keys/values for every layer (P-tuning v2); no reparameterisation MLP.
    return PrefixTuningConfig(**_prompt_common(cfg, dims, head, dims.hidden_size), prefix_projection=False)


def prompt_config(cfg, dims: PromptDims, head):
    from peft import PromptTuningConfig

    return PromptTuningConfig(**_prompt_common(cfg, dims, head, dims.embedding_dim))


def ptuning_config(cfg, dims: PromptDims, head):
    from peft import PromptEncoderConfig

    return PromptEncoderConfig(**_prompt_common(cfg, dims, head, dims.embedding_dim),
                               encoder_hidden_size=dims.embedding_dim)


def _accepts_kv_cache(model: nn.Module) -> bool:
    backbone = model.get_submodule(model.base_model_prefix)
    params = inspect.signature(backbone.forward).parameters
    return "cache" in params or "past_key_values" in params


def _pass_prefix_as_cache(model: nn.Module) -> None:
    """Let peft's prefix tuning reach the encoder's key/value cache.

    peft hands the prefix to the model as ``past_key_values`` only when the model's ``forward`` declares that
    argument; transformers 5 encoders take it as ``cache`` (through ``**kwargs`` of the classification model), so
    peft gives up. This instance-level wrapper declares ``past_key_values`` and passes it on as ``cache``.
    """
    if getattr(model, "_lightft_prefix", False):
        return
    inner = model.forward
    # transformers 5.24 calls the encoder's argument `cache`; earlier 5.x releases (5.17 on the H100 box) call it
    # `past_key_values`, and a prefix passed as `cache` there was silently dropped while the mask still counted it.
    backbone = model.get_submodule(model.base_model_prefix)
    name = "cache" if "cache" in inspect.signature(backbone.forward).parameters else "past_key_values"

    def forward(*args, past_key_values=None, **kwargs):  # no functools.wraps: peft must see this signature
        if past_key_values is not None:
            kwargs[name] = past_key_values
        return inner(*args, **kwargs)

    model.forward = forward
    model._lightft_prefix = True


@dataclass(frozen=True)
class PromptMethod(PeftMethod):
    """Soft prompts: ``num_virtual_tokens`` trainable vectors the encoder attends to; the head trains with them.

    peft prepends the virtual tokens inside its forward (extending the attention mask and token type ids), so the
    base weights are untouched and nothing merges. ``prefix`` feeds them to every layer as a key/value cache,
    which only encoders that accept a cache support; ``prompt``/``ptuning`` feed them as input embeddings.
    """

    find_targets: Callable = prompt_dims
    kv_prefix: bool = False

    def check(self, model: nn.Module, cfg) -> None:
        model_type = model.config.model_type
        if self.kv_prefix and not _accepts_kv_cache(model):
            import transformers

            backbone = type(model.get_submodule(model.base_model_prefix)).__name__
            raise LightftError(
                f"--method {self.name} is not supported for model type {model_type!r}: prefix tuning passes trainable "
                f"keys/values to every layer as a key/value cache, and {backbone} (transformers "
                f"{transformers.__version__}) accepts none; use --method prompt or --method ptuning instead"
            )
        limit = position_limit(model)
        # Both ways the virtual tokens take positions: prepended embeddings, or a cache that shifts position ids.
        if limit is not None and cfg.max_length + cfg.num_virtual_tokens > limit:
            raise LightftError(
                f"--max-length {cfg.max_length} plus --num-virtual-tokens {cfg.num_virtual_tokens} exceeds the "
                f"{limit} positions of this {model_type} model; lower one of them"
            )

    def prepare(self, model: nn.Module) -> None:
        super().prepare(model)
        if self.kv_prefix:
            _pass_prefix_as_cache(model)
