"""The training loop on accelerate: dynamic-padded random (or length-grouped) batches, AdamW with warmup, clipping,
per-epoch validation, best-epoch selection by the chosen metric and early stopping.

The loop owns no files: it returns the history and the best trainable weights, and the caller
(``lightft.pipeline``) decides what to save. Its state (``TrainState``, ``Tally``, ``EpochSums``) is saved through a
``Checkpoint`` when one is due and restored from a ``Snapshot`` (``training/checkpoint.py``); the step loop makes no
host syncs except every ``LOG_EVERY`` steps and at a save.
"""

from __future__ import annotations

import dataclasses
import math
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from accelerate import Accelerator
from torch import nn
from torch.utils.data import DataLoader

import torch.nn.functional as F

from lightft.data.batching import BatchPlan, TokenizedDataset
from lightft import pause, progress
from lightft.errors import LightftWarning, SharedError
from lightft.methods.base import TrainingHooks
from lightft.model.compiled import own_gradients, uses_cuda_graphs
from lightft.model.forward import Forward
from lightft.runtime import broadcast_from_main, gather_from_all, peak_memory_mb, reset_peak_memory, seed_everything
from lightft.threads import ThreadGovernor
from lightft.training.checkpoint import Checkpoint, EpochSums, RankState, Snapshot, rng_state, set_rng_state
from lightft.training.optim import build_optimizer, linear_warmup_decay

LOG_EVERY = 20
FINAL_SAVE_SECONDS = 60  # training since the last save that the end of training saves (see fit)


@dataclass
class Hyper:
    """The optimisation settings the loop needs (a slice of TrainConfig)."""

    lr: float
    epochs: int = 3
    batch_size: int = 16
    grad_accum: int = 1
    weight_decay: float = 0.01
    warmup_ratio: float = 0.06
    max_grad_norm: float = 1.0
    select: str = "macro_f1"
    patience: int | None = None
    seed: int = 42
    max_tokens: int | None = None
    group_by_length: bool = False
    class_weights: tuple[float, ...] | None = None  # per class id, multiplying each row's training loss


@dataclass
class TrainState:
    epoch: int = 0
    step: int = 0
    best_score: float = -math.inf
    best_epoch: int = 0
    stale_epochs: int = 0
    history: list[dict] = field(default_factory=list)


@dataclass
class FitResult:
    history: list[dict]
    best_epoch: int
    best_state: dict[str, torch.Tensor]
    seconds: float
    samples: int
    tokens: int
    peak_memory_mb: float
    loss_curve: list[tuple[int, float]]
    first_step_seconds: float = 0.0  # epoch start to the end of the first step (compile, warm-up)
    first_step_samples: int = 0
    clock: list[tuple[int, float]] = field(default_factory=list)  # (samples, train seconds) at each host sync
    interrupted: bool = False  # stopped by Ctrl-C/SIGTERM after an epoch was kept: the best epoch so far is the result

    def summary(self) -> dict:
        return {
            "seconds": round(self.seconds, 3),
            "samples_per_second": round(self.samples / self.seconds, 2) if self.seconds else None,
            "steady_samples_per_second": round(self.steady_rate(), 2) if self.steady_rate() else None,
            "late_samples_per_second": round(self.late_rate(), 2) if self.late_rate() else None,
            "first_step_seconds": round(self.first_step_seconds, 3),
            "tokens_per_second": round(self.tokens / self.seconds, 1) if self.seconds else None,
            "peak_memory_mb": round(self.peak_memory_mb, 1),
            "samples": self.samples,
            "best_epoch": self.best_epoch,
            **({"interrupted": True} if self.interrupted else {}),
            "loss_curve": self.loss_curve,
        }


    def steady_rate(self) -> float | None:
        """Samples/s after the first step (excludes compilation and warm-up)."""
        rest = self.seconds - self.first_step_seconds
        return (self.samples - self.first_step_samples) / rest if rest > 0 and self.samples > self.first_step_samples else None

    def late_rate(self) -> float | None:
        """Samples/s over the second half of training, from the first host sync at or past half the samples: with
        ``--compile`` the first steps of each new shape wait for (re)compilation, which this leaves out."""
        half = next(((n, t) for n, t in self.clock if n >= self.samples / 2 and n < self.samples), None)
        if half is None or self.seconds <= half[1]:
            return None
        return (self.samples - half[0]) / (self.seconds - half[1])


def trainable_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.detach().to("cpu", copy=True) for n, p in model.named_parameters() if p.requires_grad}


class Diverged(SharedError):
    """The loss went nan/inf. ``fit`` stops and keeps the best epoch when there is one; before any epoch was kept,
    the run fails with this one-line error and nothing is written (in every process alike: the losses it judges are
    every process's)."""

    def __init__(self, message: str, detail: str):
        super().__init__(message)
        self.detail = detail  # what went nan, and where: 'the mean training loss became nan by step 40'


def _fix(hp: Hyper) -> str:
    fix = f"lower --lr (it is {hp.lr:g})"
    return fix + " or clip gradients again (--max-grad-norm 1)" if hp.max_grad_norm == 0 else fix


def _finite(loss: float, state: TrainState, hp: Hyper, what: str = "mean training loss") -> float:
    """The loss, or ``Diverged`` once it is nan/inf."""
    if math.isfinite(loss):
        return loss
    detail = f"the {what} became {loss} by step {state.step}"
    raise Diverged(f"training diverged: {detail} (epoch {state.epoch}); {_fix(hp)}", detail)


def _warn_stopped(epoch: int, detail: str, state: TrainState, hp: Hyper) -> None:
    warnings.warn(f"training diverged in epoch {epoch} ({detail}); kept epoch {state.best_epoch} and stopped. "
                  f"A {_fix(hp)} may train further", LightftWarning, stacklevel=3)


@dataclass
class Tally:
    """What the loop counts as it goes, beside ``TrainState``: the loss curve and clock it logs, rows seen, time
    spent training (validation excluded), optimizer updates."""

    curve: list[tuple[int, float]] = field(default_factory=list)
    clock: list[tuple[int, float]] = field(default_factory=list)
    samples: int = 0
    seconds: float = 0.0
    updates: int = 0
    first_step_seconds: float = 0.0
    first_step_samples: int = 0
    peak_memory_mb: float = 0.0  # before a resume (the process that saved the state measured it)


@dataclass
class _Step:
    """The objects one optimisation step needs (built once by ``fit``)."""

    model: nn.Module
    forward: Forward
    accelerator: Accelerator
    optimizer: torch.optim.Optimizer
    scheduler: Any
    hooks: TrainingHooks
    hp: Hyper


def _train_epoch(step: _Step, loader: DataLoader, denominators: list[float], state: TrainState, tally: Tally,
                 bar, governor: ThreadGovernor, started: float, sums: EpochSums,
                 checkpoint: Checkpoint | None = None, save: Callable[[EpochSums], bool] | None = None,
                 rng: dict | None = None) -> tuple[torch.Tensor, int]:
    """One pass over the epoch's batches (those after ``sums.steps`` when resuming); returns the summed loss and rows
    over it. The loss is read on the host every LOG_EVERY steps and at the end (``Diverged`` once it is nan/inf),
    never per step. ``save(sums)`` gets the state after a mid-epoch update once ``checkpoint`` is due (only then a
    host sync); ``rng`` (a resumed run's saved RNG state) is restored at the first batch, where the saving run stood.
    Under several processes the main process's clock decides, told to every process with the logged loss (no
    collective of its own): all of them save together at the first update from that log step on.

    The summed loss over a window's rows is divided by BatchPlan.loss_denominators (the window's rows, or a fixed
    mean with token budgets); accelerate divides what it back-propagates by grad_accum, which the factor undoes. A
    per-batch mean instead left the last short window with 1/grad_accum of its gradient."""
    model, accelerator, hp, device = step.model, step.accelerator, step.hp, step.accelerator.device
    running = torch.tensor(sums.running, dtype=torch.float32, device=device)
    epoch_loss = torch.tensor(sums.loss, dtype=torch.float32, device=device)
    running_n, running_rows, epoch_rows, done = sums.running_n, sums.running_rows, sums.rows, sums.steps
    several, save_wanted, pause_wanted = accelerator.num_processes > 1, False, False
    packed_module = isinstance(accelerator.unwrap_model(model), _PackedForward)
    trained = [p for p in model.parameters() if p.requires_grad]
    graphs = uses_cuda_graphs(step.forward.compile)
    optimizer = _bare_optimizer(step.optimizer, accelerator)
    weight = None if hp.class_weights is None else torch.tensor(hp.class_weights, dtype=torch.float32, device=device)
    for batch in loader:
        if rng is not None:
            set_rng_state(rng)
            rng = None
        with accelerator.accumulate(model):
            with accelerator.autocast():
                logits = model(batch) if packed_module else step.forward.logits(model, batch)
            loss_sum = F.cross_entropy(logits.float(), batch["labels"], weight=weight, reduction="sum")
            scaled = loss_sum * (hp.grad_accum / denominators[done // hp.grad_accum])
            extra = step.hooks.extra_loss(model)
            accelerator.backward(scaled if extra is None else scaled + extra)
            updated = accelerator.sync_gradients
            if graphs and not updated:
                own_gradients(trained)  # the next replay would write over them (model/compiled.py)
            if updated:
                if hp.max_grad_norm > 0:  # the trained tensors, listed once (sharded training will need its own)
                    accelerator.clip_grad_norm_(trained, hp.max_grad_norm)
                optimizer.step()
                step.scheduler.step()  # once per update (not prepared: accelerate would step it once per process)
                tally.updates += 1
                step.hooks.after_update(tally.updates)
                optimizer.zero_grad(set_to_none=True)
        governor.check()  # a probe every PROBE_EVERY_SECONDS at most
        rows = len(batch["labels"])
        running += loss_sum.detach()
        running_n += 1
        running_rows += rows
        state.step += 1
        done += 1
        tally.samples += rows
        bar.update(rows)
        if state.step == 1:
            bar.set_postfix_str("")
            if device.type == "cuda":
                torch.cuda.synchronize(device)  # once per run: time to first step
            tally.first_step_seconds, tally.first_step_samples = time.perf_counter() - started, rows
        if state.step % LOG_EVERY == 0:
            # the only host sync, every LOG_EVERY steps (every process at the same step: one all-reduce)
            due = several and checkpoint is not None and accelerator.is_main_process and checkpoint.due()
            loss, (due, paused) = _mean_over_processes(accelerator, running, running_rows,
                                                       (due, several and pause.requested()))
            loss, save_wanted, pause_wanted = _finite(loss, state, hp), save_wanted or due or paused, \
                pause_wanted or paused
            tally.clock.append((tally.samples, tally.seconds + time.perf_counter() - started))
            tally.curve.append((state.step, round(loss, 5)))
            bar.set_postfix(loss=f"{loss:.4f}", samples_s=f"{bar.n / (time.perf_counter() - started):.1f}")
            epoch_loss += running
            epoch_rows += running_rows
            running.zero_()
            running_n, running_rows = 0, 0
        if checkpoint is not None and updated and not accelerator.gradient_state.end_of_dataloader:
            stop = pause_wanted if several else pause.requested()
            if stop or (save_wanted if several else checkpoint.due()):
                save_wanted = False
                written = save(EpochSums(done, epoch_loss.item(), epoch_rows, running.item(), running_rows, running_n))
                if stop:
                    _pause_or_go_on(written, checkpoint)
                    pause_wanted = False
        elif checkpoint is None and (pause_wanted if several else pause.requested()):
            _ignore_pause()  # under several processes, every process at once: the main process says it
            pause_wanted = False
    epoch_loss += running
    epoch_rows += running_rows
    if running_n:
        tally.curve.append((state.step, round(_finite(_mean_over_processes(accelerator, running, running_rows)[0],
                                                      state, hp), 5)))
    if accelerator.num_processes > 1:  # the epoch's loss over every process's rows
        both = accelerator.reduce(torch.stack([epoch_loss, torch.tensor(float(epoch_rows), device=device)]), "sum")
        epoch_loss, epoch_rows = both[0], int(both[1].item())
    return epoch_loss, epoch_rows


def _bare_optimizer(optimizer, accelerator: Accelerator):
    """The torch optimizer inside accelerate's wrapper, where the wrapper would only call it: without a gradient
    scaler (lightft trains in bf16 or fp32) and off XLA, and the loop steps it at updates only. The wrapper checks
    whether the ``lomo_optim`` package is installed twice per step (``importlib.util.find_spec``, a walk of
    ``sys.path``) and inspects ``zero_grad``'s signature: 0.2-0.4 ms of host time per step on this repository's CPU
    (``bench/loop_overhead.py``, docs/performance.md), which a host-bound GPU step pays in full."""
    from accelerate.utils import DistributedType

    if accelerator.scaler is None and accelerator.distributed_type != DistributedType.XLA:
        return getattr(optimizer, "optimizer", optimizer)
    return optimizer


def _mean_over_processes(accelerator: Accelerator, loss_sum: torch.Tensor, rows: int,
                         flags: tuple[bool, ...] = ()) -> tuple[float, tuple[bool, ...]]:
    """The mean loss over ``rows`` rows of this process and, under ``accelerate launch``, of every other one (each
    process calls it at the same step, so the decision to stop on a nan is the same everywhere); and, for each of
    ``flags``, whether any process raised it (the same all-reduce carries them)."""
    if accelerator.num_processes == 1:
        return (loss_sum / rows).item(), flags
    device = loss_sum.device
    sums = accelerator.reduce(torch.stack([loss_sum.float(), torch.tensor(float(rows), device=device),
                                           *(torch.tensor(float(f), device=device) for f in flags)]), "sum").tolist()
    return sums[0] / sums[1], tuple(s > 0 for s in sums[2:])


def fit(model: nn.Module, train: TokenizedDataset, hp: Hyper, *, forward: Forward,
        validate: Callable[[nn.Module], dict], accelerator: Accelerator, quiet: bool = False,
        hooks: TrainingHooks | None = None, checkpoint: Checkpoint | None = None,
        resume: Snapshot | None = None) -> FitResult:
    """Train ``model`` in place; return history and the best epoch's trainable weights.

    ``hooks`` (from ``Method.training_hooks``) add a method's loss term and per-update work (AdaLoRA); the logged
    loss stays the cross-entropy so curves compare across methods. A nan loss after an epoch was kept, or an
    interrupt (Ctrl-C, SIGTERM), ends training with the best epoch so far; before that, it propagates.

    ``checkpoint`` saves the whole training state whenever its interval has passed, after an update or after an
    epoch's validation; ``resume`` (a ``Snapshot`` it saved) continues from there: the same batches, dropout masks
    and updates as a run that never stopped. Under several processes the main process's clock decides when, each
    process adds its own RNG state and loss sums (``RankState``), the main one writes, and each resumes its own."""
    hooks = hooks or TrainingHooks()
    device = accelerator.device
    collate = forward.collator()
    processes = accelerator.num_processes
    quiet = quiet or not accelerator.is_main_process
    plan = BatchPlan(train.lengths, hp.batch_size, seed=hp.seed, max_tokens=hp.max_tokens, group=hp.group_by_length,
                     width=collate.width, processes=processes, rank=accelerator.process_index)
    # Pinned host memory + non-blocking copies (Accelerator(dataloader_config=non_blocking)) keep the host from
    # waiting on the GPU at every batch: a pageable copy blocks until the previous step's kernels finish.
    loader = DataLoader(train, batch_sampler=plan, collate_fn=collate, pin_memory=device.type == "cuda")
    total_updates = plan.updates(hp.epochs, hp.grad_accum)
    optimizer = build_optimizer(model, hp.lr, hp.weight_decay, device)
    scheduler = linear_warmup_decay(optimizer, total_updates, hp.warmup_ratio)
    hooks.start(total_updates)
    bare = model  # the model itself; what trains may be wrapped (DDP, and the packed forward under it)
    net = _PackedForward(model, forward) if processes > 1 and forward.unpadded else model
    model, optimizer = accelerator.prepare(net, optimizer)
    loader = _prepare_loader(accelerator, loader)
    if processes > 1:  # DDP gave every process rank 0's weights; dropout masks differ from process to process
        seed_everything(hp.seed + accelerator.process_index)
    step = _Step(model, forward, accelerator, optimizer, scheduler, hooks, hp)
    state, tally, sums, best = TrainState(), Tally(), EpochSums(), None
    stopped, rng = False, None
    if resume is not None:
        state, tally, sums, best, stopped = TrainState(**resume.state), Tally(**resume.tally), resume.sums, \
            resume.best, resume.stopped
        restore(bare, resume.model)
        optimizer.load_state_dict(resume.optimizer)
        scheduler.load_state_dict(resume.scheduler)
        hooks.load_state(*resume.hooks)
        resume.model, resume.optimizer = {}, {}  # in place now: no second copy in host memory for the whole run
        saved_rng = resume.rng
        if accelerator.process_index:  # this process's own part: its dropout masks, its rows' losses and count
            own = resume.ranks[accelerator.process_index - 1]
            sums, saved_rng, tally.samples = own.sums, own.rng, own.samples
        if sums.steps:
            rng = saved_rng  # mid-epoch: restored at the epoch's first remaining batch
        else:
            set_rng_state(saved_rng)  # between epochs: restored where the saving run stood

    def snapshot(sums_now: EpochSums, *, stopped_now: bool = False, elapsed: float = 0.0) -> bool:
        """Save the state now (the caller knows a save is due; under several processes, every process calls it at
        the same step); ``elapsed``: the running epoch's training seconds. True once it is written (in every
        process: the main process's outcome)."""
        ranks = []
        if processes > 1:  # the same weights and optimizer everywhere (DDP), but each process's own RNG and sums
            ranks = gather_from_all(RankState(rng=rng_state(device), sums=sums_now, samples=tally.samples))[1:]
            if not accelerator.is_main_process:
                return broadcast_from_main(None)
        written = checkpoint.save(Snapshot(
            state=dataclasses.asdict(state), tally={**dataclasses.asdict(tally), "seconds": tally.seconds + elapsed,
                                                    "peak_memory_mb": max(tally.peak_memory_mb, peak_memory_mb(device))},
            sums=sums_now,
            model=trainable_state(bare), best=best, optimizer=optimizer.state_dict(),
            scheduler=scheduler.state_dict(), hooks=hooks.state(), rng=rng_state(device), stopped=stopped_now,
            processes=processes, ranks=ranks))
        return broadcast_from_main(written) if processes > 1 else written

    def save_mid_epoch(sums_now: EpochSums) -> bool:
        return snapshot(sums_now, elapsed=time.perf_counter() - started)

    governor = ThreadGovernor(device)  # one CPU thread while other processes hold the cores
    governor.check()
    reset_peak_memory(device)
    if checkpoint is not None:
        checkpoint.start_clock()
    interrupted, bar, started = False, None, None  # started: the running epoch's clock, None once its time is counted
    first_epoch = state.epoch + (0 if sums.steps else 1)
    try:
        for epoch in range(first_epoch, hp.epochs + 1):
            if stopped:
                break
            state.epoch = epoch
            plan.set_epoch(epoch - 1)
            if hasattr(loader, "set_epoch"):  # accelerate's loader sets its sampler's epoch from its own count
                loader.set_epoch(epoch - 1)
            plan.skip = sums.steps
            model.train()
            started = time.perf_counter()
            bar = progress.bar(sum(len(b) for b in plan.batches), f"epoch {epoch}/{hp.epochs}", quiet=quiet)
            if sums.steps:
                bar.update(sum(len(b) for b in plan.batches[:sums.steps]))
            if forward.compile is not None and state.step == 0:
                bar.set_postfix_str("compiling the model (a minute or more)", refresh=True)
            try:
                epoch_loss, epoch_rows = _train_epoch(step, loader, plan.loss_denominators(hp.grad_accum), state, tally, bar,
                                          governor, started, sums, checkpoint, save_mid_epoch, rng)
            except Diverged as error:
                if not state.best_epoch:
                    raise
                bar.close()
                tally.seconds += time.perf_counter() - started
                started = None
                state.history.append({"epoch": epoch, "step": state.step, "train_loss": None,
                                      "validation": {"accuracy": None, "macro_f1": None, "loss": None},
                                      "improved": False, "diverged": True})
                _warn_stopped(epoch, error.detail, state, hp)
                break
            finally:
                plan.skip, sums, rng = 0, EpochSums(), None
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            tally.seconds += time.perf_counter() - started
            started = None
            bar.close()
            # every process scores the whole split on the bare model (no collective per batch), then takes the main
            # process's figures: the keep/stop decisions below must agree everywhere, and GPUs need not round alike
            metrics = validate(bare)
            if processes > 1:
                metrics = broadcast_from_main(metrics)
            diverged = not math.isfinite(metrics["loss"])  # weights broken by the epoch's last updates
            if diverged and not state.history:
                _finite(metrics["loss"], state, hp, what="validation loss")
            score = metrics[hp.select]
            improved = score > state.best_score and not diverged
            state.history.append({
                "epoch": epoch,
                "step": state.step,  # steps so far, where this epoch ends on the loss curve
                # the mean over the epoch's rows
                "train_loss": round(epoch_loss.item() / epoch_rows, 5) if epoch_rows else None,
                "validation": {k: metrics[k] if math.isfinite(metrics[k]) else None
                               for k in ("accuracy", "macro_f1", "loss")},
                "improved": improved,
                **({"diverged": True} if diverged else {}),
            })
            if diverged:
                _warn_stopped(epoch, f"the validation loss is {metrics['loss']}", state, hp)
                break
            if improved:  # the copy first: an interrupt in between must not name an epoch whose weights are not kept
                kept = trainable_state(bare)
                hooks.on_best(bare)
                best, state.best_score, state.best_epoch, state.stale_epochs = kept, score, epoch, 0
            else:
                state.stale_epochs += 1
            stopped = hp.patience is not None and state.stale_epochs >= hp.patience
            last = stopped or epoch == hp.epochs
            # after the last epoch, a minute of training is worth a save: testing a large split can take minutes,
            # and an interrupt or a kill then must not cost the trained model
            if checkpoint is not None:
                due, stop = _agreed(processes, checkpoint.due() or (last and checkpoint.due(FINAL_SAVE_SECONDS)),
                                    pause.requested())
                written = snapshot(EpochSums(), stopped_now=last) if due or stop else False
                if stop:
                    _pause_or_go_on(written, checkpoint)
            elif _agreed(processes, False, pause.requested())[1]:
                _ignore_pause()
    except pause.Paused:  # the state is saved: the same command resumes it
        if bar is not None:
            bar.close()
        raise
    except KeyboardInterrupt:  # Ctrl-C, or SIGTERM as the CLI turns it
        if not state.best_epoch or not accelerator.is_main_process:
            # nothing kept yet: the run stops and writes nothing; another process than the main one exits non-zero,
            # so the launcher stops the group (a quiet exit left the main process waiting in its next all-reduce)
            raise
        interrupted = True
        if started is not None:
            tally.seconds += time.perf_counter() - started
        if bar is not None:
            bar.close()
        warnings.warn(f"interrupted in epoch {state.epoch}: finishing with epoch {state.best_epoch}, the best so far "
                      "(testing and saving it); interrupt again to stop without saving", LightftWarning, stacklevel=2)
    finally:
        governor.restore()  # a run that raises leaves the process on its thread count
    if processes > 1 and not interrupted:  # rows trained by every process (the figures report the whole run)
        tally.samples = int(accelerator.reduce(torch.tensor(float(tally.samples), device=device), "sum").item())
    # real (unpadded) tokens seen, without a sync per step: exact for whole epochs, the mean length for a cut one
    tokens = round(tally.samples * sum(train.lengths) / len(train.lengths)) if train.lengths else 0
    return FitResult(
        history=state.history,
        best_epoch=state.best_epoch,
        best_state=best,
        seconds=tally.seconds,
        samples=tally.samples,
        tokens=tokens,
        peak_memory_mb=max(tally.peak_memory_mb, peak_memory_mb(device)),
        loss_curve=tally.curve,
        first_step_seconds=tally.first_step_seconds,
        first_step_samples=tally.first_step_samples,
        clock=tally.clock,
        interrupted=interrupted,
    )


class _PackedForward(nn.Module):
    """The padding-free forward as a module's own forward, for DDP to wrap: it calls the encoder's parts itself
    (``model/unpadded.py``), and DDP's gradient sync (and ``no_sync`` while accumulating) needs the call to go through
    DDP's forward."""

    def __init__(self, model: nn.Module, forward: Forward):
        super().__init__()
        self.model = model
        self.packed = forward

    def forward(self, batch: dict) -> torch.Tensor:
        return self.packed.logits(self.model, batch)


def _agreed(processes: int, due: bool, paused: bool) -> tuple[bool, bool]:
    """The main process's ``due`` and whether any process was asked to pause, in every process (one collective, so
    only once per epoch)."""
    if processes == 1:
        return due, paused
    parts = gather_from_all((due, paused))
    return parts[0][0], any(p for _, p in parts)


def _pause_or_go_on(written: bool, checkpoint: Checkpoint) -> None:
    """Stop on a pause request once its state is saved; when it could not be (the save warned why), go on."""
    if written:
        raise pause.Paused(checkpoint.path)
    pause.clear()
    warnings.warn("asked to pause (SIGUSR1), but the training state could not be saved: the run goes on",
                  LightftWarning, stacklevel=3)


def _ignore_pause() -> None:
    pause.clear()
    warnings.warn("asked to pause (SIGUSR1), but this run saves no training state (--checkpoint-minutes 0): it goes "
                  "on; Ctrl-C finishes it with its best epoch so far", LightftWarning, stacklevel=3)


def _prepare_loader(accelerator: Accelerator, loader: DataLoader) -> DataLoader:
    """accelerate's loader (batches moved to the device, the end of the epoch known to ``accumulate``); under
    ``accelerate launch`` without its sharding, which ``BatchPlan`` does itself."""
    if accelerator.num_processes == 1:
        return accelerator.prepare(loader)
    from accelerate.data_loader import prepare_data_loader

    return prepare_data_loader(loader, accelerator.device, num_processes=1, process_index=0, put_on_device=True,
                               non_blocking=accelerator.non_blocking)


def restore(model: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Load the best epoch's trainable weights back into ``model``."""
    params = dict(model.named_parameters())
    with torch.no_grad():
        for name, tensor in state.items():
            params[name].copy_(tensor)


