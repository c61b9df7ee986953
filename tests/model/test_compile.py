"""--compile: dynamic shapes keep compilations few, and compiled training/evaluation match eager."""

import json

import pytest
import torch

from lightft.data.batching import bucket_length
from lightft.errors import LightftWarning
from lightft.evaluation import predict_logits
from lightft.model import compiled as compiled_module
from lightft.model import forward as forward_module
from lightft.model.forward import Forward


@pytest.fixture()
def counter(monkeypatch):
    """Route --compile through a backend that counts compiled graphs and runs them eagerly (fast)."""
    from torch._dynamo.testing import CompileCounter

    torch._dynamo.reset()
    count = CompileCounter()
    monkeypatch.setattr(compiled_module, "BACKEND", count)
    monkeypatch.setattr(compiled_module, "_WHOLE", {})
    monkeypatch.setattr(compiled_module, "_FAILED", set())
    yield count
    torch._dynamo.reset()


def test_compiled_run_compiles_a_few_graphs_not_one_per_length(fast, counter, monkeypatch):
    import lightft

    widths = []
    collate = forward_module.PadCollator.__call__

    def spy(self, items):
        batch = collate(self, items)
        widths.append(batch["input_ids"].shape[1])
        return batch

    monkeypatch.setattr(forward_module.PadCollator, "__call__", spy)
    result = lightft.train(**{**fast, "batch_size": 2}, compile=True)  # two rows a batch: widths vary
    assert len(set(widths)) >= 3 and len(widths) > 20  # several shapes (each batch its own width) over many batches...
    # ...but two layer graphs in all, shared by every layer (shapes are dynamic): training's (the first layer's input
    # needs no gradient, later layers' inputs do); the baseline, validation and test evaluations run eager
    assert 1 <= counter.frame_count <= 2, counter.frame_count
    assert result.metrics["train"]["samples"] > 0


@pytest.mark.parametrize("spec", ["default", "model:default"])
def test_compiled_graphs_take_no_float_scalars(tiny_model_dir, monkeypatch, spec):
    """Module floats (dropout p, LoRA scaling, LayerNorm eps) are traced as constants. Torch's default makes each a
    0-d float64 CPU input, which inductor casts with a C++ kernel: a C++ build in a CUDA run's first step."""
    from transformers import AutoModelForSequenceClassification

    from lightft.config import TrainConfig
    from lightft.methods import get_method

    inputs = []

    def backend(gm, example_inputs):
        inputs.extend(example_inputs)
        return gm.forward

    torch._dynamo.reset()
    monkeypatch.setattr(compiled_module, "BACKEND", backend)
    monkeypatch.setattr(compiled_module, "_WHOLE", {})
    model = AutoModelForSequenceClassification.from_pretrained(tiny_model_dir)
    model = get_method("lora").attach(model, TrainConfig(model="x", data="y", method="lora", dropout=0.1)).train()
    batch = Forward(pad_token_id=0).collator()([{"input_ids": list(range(5, 5 + n)), "index": i, "label": 0}
                                                 for i, n in enumerate((4, 9))])
    Forward(pad_token_id=0, compile=spec, max_length=64).logits(model, batch).sum().backward()
    torch._dynamo.reset()
    floats = [x for x in inputs if isinstance(x, (float, torch.SymFloat))
              or isinstance(x, torch.Tensor) and x.dim() == 0 and x.is_floating_point()]
    assert inputs and not floats


@pytest.mark.parametrize("spec", ["default", "model:default"])
def test_compiled_evaluation_equals_eager(tiny_model_dir, counter, spec):
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(tiny_model_dir).eval()
    g = torch.Generator().manual_seed(0)
    ids = [torch.randint(1000, 2000, (int(n),), generator=g).tolist() for n in torch.randint(2, 60, (50,), generator=g)]
    kw = dict(batch_size=8, device=torch.device("cpu"), quiet=True)
    eager = predict_logits(model, ids, forward=Forward(pad_token_id=0), **kw)
    compiled = predict_logits(model, ids, forward=Forward(pad_token_id=0, compile=spec, max_length=64), **kw)
    assert counter.frame_count >= 1  # it did go through the compiled function
    torch.testing.assert_close(torch.from_numpy(compiled), torch.from_numpy(eager), atol=1e-5, rtol=0)


def test_compile_with_inductor_end_to_end(fast, tmp_path):
    """The real compiler: train with --compile, then the saved run predicts (eagerly) what training measured."""
    import lightft

    torch._dynamo.reset()
    result = lightft.train(**{**fast, "epochs": 1}, compile=True, baseline=False, precision="fp32")
    assert "compile: true" in (result.path / "config.yaml").read_text()
    test_rows = [json.loads(line) for line in open(f"{fast['data']}/test.jsonl")]
    predictor = lightft.load(result.path)
    assert predictor.compile is False  # prediction stays eager unless asked
    predicted = [p["label"] for p in predictor.predict([r["text"] for r in test_rows])]
    accuracy = sum(p == r["label"] for p, r in zip(predicted, test_rows)) / len(test_rows)
    assert accuracy == pytest.approx(result.metrics["eval"]["accuracy"], abs=1e-9)
    torch._dynamo.reset()


def test_compiled_packed_forward_and_backward_equal_eager(counter):
    """The padding-free path under --compile gives the eager logits and gradients."""
    from tests.model.test_unpadded import random_sequences, tiny_model

    model = tiny_model("roberta", dropout=0.0).train()  # RoBERTa: positions start after the pad id
    pad, cpu = model.config.pad_token_id, torch.device("cpu")
    seqs = random_sequences(pad, lengths=[7, 1, 13, 4, 10, 20, 3, 9])
    labels = torch.tensor([0, 1, 2, 1, 0, 2, 1, 0])
    results = []
    for how in (None, "default"):
        forward = Forward.choose(model, pad, "on", cpu, compile=bool(how), max_length=32)
        batch = forward.collator()([{"input_ids": s, "index": i} for i, s in enumerate(seqs)])
        assert batch["input_ids"].shape[1] == 67  # no bucket padding without CUDA graphs
        model.zero_grad(set_to_none=True)
        logits = forward.logits(model, batch)
        torch.nn.functional.cross_entropy(logits, labels).backward()
        results.append((logits.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}))
    assert counter.frame_count >= 1
    (eager, eager_grads), (compiled, compiled_grads) = results
    torch.testing.assert_close(compiled, eager, atol=1e-5, rtol=0)
    for name, grad in eager_grads.items():
        torch.testing.assert_close(compiled_grads[name], grad, atol=1e-5, rtol=1e-4, msg=name)


@pytest.mark.parametrize("unpadded", [False, True])
def test_only_cuda_graph_modes_pad_batches_to_bucket_sizes(unpadded):
    items = [{"input_ids": [5] * n, "index": i} for i, n in enumerate([7, 13, 9])]  # 29 tokens, longest 13
    for spec, bucketed in [(None, False), ("default", False), ("model:default", False),
                           ("max-autotune-no-cudagraphs", False), ("reduce-overhead", True), ("model:max-autotune", True)]:
        batch = Forward(pad_token_id=0, unpadded=unpadded, compile=spec, max_length=64).collator()(items)
        padded = bucket_length(29, per_doubling=8) if unpadded else bucket_length(13, cap=64)
        assert batch["input_ids"].shape[1] == (padded if bucketed else (29 if unpadded else 16)), spec  # 16: x8


def test_a_failing_compiler_falls_back_to_eager_with_one_warning(tiny_model_dir, monkeypatch):
    """A missing C++ compiler or triton must not end a run (or lose its training): warn once, go on eagerly."""
    from transformers import AutoModelForSequenceClassification

    def broken(graph, example_inputs):
        raise RuntimeError("no working C++ compiler found")

    torch._dynamo.reset()
    monkeypatch.setattr(compiled_module, "BACKEND", broken)
    monkeypatch.setattr(compiled_module, "_FAILED", set())
    model = AutoModelForSequenceClassification.from_pretrained(tiny_model_dir).eval()
    ids = [[101, 2000 + i, 102] for i in range(10)]
    kw = dict(batch_size=4, device=torch.device("cpu"), quiet=True)
    eager = predict_logits(model, ids, forward=Forward(pad_token_id=0), **kw)
    with pytest.warns(LightftWarning, match=r"--compile failed \(RuntimeError: no working C\+\+ compiler found\); "
                      r"running without it") as caught:
        compiled = predict_logits(model, ids, forward=Forward(pad_token_id=0, compile="default"), **kw)
    assert len([w for w in caught if issubclass(w.category, LightftWarning)]) == 1  # three batches, one warning
    assert compiled_module._FAILED == {"default"}
    assert all(block._compiled_call_impl is None for block in compiled_module.repeated_blocks(model))
    torch.testing.assert_close(torch.from_numpy(compiled), torch.from_numpy(eager))
    torch._dynamo.reset()


def test_predict_with_compile_equals_eager(fast, counter):
    import lightft

    result = lightft.train(**{**fast, "epochs": 1}, baseline=False)
    texts = ["a good great film", "bad awful dull plot", "the movie was fine and it was a lovely scene"]
    eager = lightft.load(result.path).logits(texts)
    frames = counter.frame_count
    compiled = lightft.load(result.path, compile=True).logits(texts)
    assert counter.frame_count > frames  # the predictor went through the compiled function
    # a compiled graph may order and fuse ops differently, which can round differently under bf16 autocast
    torch.testing.assert_close(torch.from_numpy(compiled), torch.from_numpy(eager), atol=2e-3, rtol=0)


@pytest.mark.parametrize("spec", ["reduce-overhead", "layers:max-autotune"])
def test_cuda_graphs_per_layer_are_refused_for_training(tiny_model_dir, counter, spec):
    """Training under CUDA graphs per layer died with a segmentation fault on an H100: a clear error instead."""
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(tiny_model_dir)
    forward = Forward(pad_token_id=0, compile=spec, max_length=32)
    batch = forward.collator()([{"input_ids": [5, 6, 7], "index": 0, "label": 0}])
    mode = spec.rpartition(":")[2]
    with pytest.raises(ValueError, match=f"records CUDA graphs per layer, which lightft allows for inference only: "
                       rf".*; train with model:{mode} \(the whole model\) or default"):
        forward.logits(model, batch)
    with torch.no_grad():  # inference may use them
        assert forward.logits(model, batch).shape == (1, model.config.num_labels)


def test_cuda_graphs_are_refused_for_training_under_several_processes(tiny_model_dir, counter, monkeypatch):
    """DDP with CUDA graphs has never run: refused in training, allowed for inference."""
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(tiny_model_dir)
    forward = Forward(pad_token_id=0, compile="model:reduce-overhead", max_length=32)
    batch = forward.collator()([{"input_ids": [5, 6, 7], "index": 0, "label": 0}])
    with monkeypatch.context() as patch:  # a process group of two, as torchrun's would be
        patch.setattr(torch.distributed, "is_initialized", lambda: True)
        patch.setattr(torch.distributed, "get_world_size", lambda group=None: 2)
        with pytest.raises(ValueError, match=r"'model:reduce-overhead' uses CUDA graphs, which lightft has not "
                           r"trained with under several processes \(found 2\); train data-parallel with model:default"):
            forward.logits(model, batch)
    with monkeypatch.context() as patch, torch.no_grad():  # inference compiles, and torch's logging reads the rank
        patch.setattr(compiled_module, "_processes", lambda: 2)  # so only lightft's count says two here
        assert forward.logits(model, batch).shape == (1, model.config.num_labels)


def test_whole_model_cuda_graphs_train_with_accumulated_gradients_of_their_own(fast, counter, monkeypatch):
    """The whole model in CUDA graphs trains (run 15, H100). A replay writes over the tensors the previous backward
    produced, and autograd keeps the first micro-batch's gradient as ``.grad`` itself. Here each compiled call zeroes
    whatever the previous backward produced, as a replay would: with grad-accum 2 the run still equals the same run
    without those overwrites, because the loop gives the parameters gradients of their own first (without that, every
    update lost its first micro-batch's gradient)."""
    import lightft
    from lightft.model.forward import Forward as ForwardClass

    choose, logits = ForwardClass.choose.__func__, compiled_module.compiled_logits

    def run(spec, name):
        def chosen(cls, *args, compile=False, **kw):
            return choose(cls, *args, compile=spec if compile else False, **kw)

        monkeypatch.setattr(ForwardClass, "choose", classmethod(chosen))
        result = lightft.train(**{**fast, "output": fast["output"] + name, "grad_accum": 2}, compile=True,
                               baseline=False)
        return result.metrics

    produced, hooked, overwritten = set(), set(), []

    def replay(spec, eager, model, batch, unpadded):  # what a CUDA-graph replay does to the last backward's outputs
        for p in model.parameters():
            if p.requires_grad and id(p) not in hooked:
                hooked.add(id(p))
                p.register_hook(lambda g: produced.add(g.data_ptr()))
            if p.grad is not None and p.grad.data_ptr() in produced:
                p.grad.zero_()
                overwritten.append(p)
        produced.clear()
        return logits(spec, eager, model, batch, unpadded)

    plain = run("model:reduce-overhead", "-plain")  # the counting backend records no graphs: nothing is overwritten
    monkeypatch.setattr(compiled_module, "compiled_logits", replay)
    graphs = run("model:reduce-overhead", "-graphs")
    assert graphs["train"]["loss_curve"] == plain["train"]["loss_curve"]
    assert [graphs["eval"][k] for k in ("loss", "accuracy", "macro_f1")] == \
        [plain["eval"][k] for k in ("loss", "accuracy", "macro_f1")]
    assert hooked and not overwritten  # the replays found no gradient in their memory


def test_predict_compile_compiles_the_whole_forward(fast, counter):
    """predict --compile compiles the whole model (faster than eager on an H100; the compiled layers were slower)."""
    import lightft

    result = lightft.train(**{**fast, "epochs": 1}, baseline=False)
    texts = [json.loads(line)["text"] for line in open(f"{fast['data']}/test.jsonl")][:8]
    eager = lightft.load(result.path, precision="fp32").logits(texts)
    compiled = lightft.load(result.path, compile=True, precision="fp32").logits(texts)
    assert list(compiled_module._WHOLE) == [(counter, "default")] and counter.frame_count >= 1
    torch.testing.assert_close(torch.from_numpy(compiled), torch.from_numpy(eager), atol=1e-5, rtol=0)
