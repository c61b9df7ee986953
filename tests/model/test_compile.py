"""--compile: bucketed shapes keep compilations few, and compiled training/evaluation match eager."""

import json

import pytest
import torch

from lightft.data.batching import bucket_length
from lightft.evaluate import predict_logits
from lightft.model import forward as forward_module
from lightft.model.forward import Forward


@pytest.fixture()
def counter(monkeypatch):
    """Route --compile through a backend that counts compiled graphs and runs them eagerly (fast)."""
    from torch._dynamo.testing import CompileCounter

    torch._dynamo.reset()
    count = CompileCounter()
    monkeypatch.setitem(forward_module._COMPILED, "default",
                        torch.compile(forward_module._eager_logits, backend=count, dynamic=True))
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
    result = lightft.train(**fast, compile=True)
    assert set(widths) <= {bucket_length(n, cap=32) for n in range(1, 33)}
    assert len(set(widths)) >= 3 and len(widths) > 20  # several shapes over many batches...
    # ...but three graphs in all (shapes are dynamic): the baseline evaluation, training, validation/test
    assert counter.frame_count <= 3, counter.frame_count
    assert result.metrics["train"]["samples"] > 0


def test_compiled_evaluation_equals_eager(tiny_model_dir, counter):
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(tiny_model_dir).eval()
    g = torch.Generator().manual_seed(0)
    ids = [torch.randint(1000, 2000, (int(n),), generator=g).tolist() for n in torch.randint(2, 60, (50,), generator=g)]
    kw = dict(batch_size=8, device=torch.device("cpu"), quiet=True)
    eager = predict_logits(model, ids, forward=Forward(pad_token_id=0), **kw)
    compiled = predict_logits(model, ids, forward=Forward(pad_token_id=0, compile="default", max_length=64), **kw)
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
