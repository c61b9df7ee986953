"""--compile with every method: compiled once, not once per step. A float or int that changed every step would be
guarded on and recompiled until torch's limit, then run eagerly without a word; so the compiled-frame count after
two training steps must still hold after eight steps of other lengths."""

import pytest
import torch

from lightft.methods import METHODS
from lightft.model import compiled as compiled_module
from lightft.model.forward import Forward


@pytest.mark.parametrize("method", sorted(METHODS))
def test_every_method_stops_compiling_after_the_first_steps(tiny_model_dir, monkeypatch, method):
    from torch._dynamo.testing import CompileCounter
    from transformers import AutoModelForSequenceClassification

    from lightft.config import TrainConfig

    torch._dynamo.reset()
    count = CompileCounter()
    monkeypatch.setattr(compiled_module, "BACKEND", count)
    monkeypatch.setattr(compiled_module, "_WHOLE", {})
    monkeypatch.setattr(compiled_module, "_FAILED", set())
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(tiny_model_dir)
    model = METHODS[method].attach(model, TrainConfig(model="x", data="y", method=method)).train()
    forward = Forward(pad_token_id=0, compile="default", max_length=64)
    collate = forward.collator()
    trained = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.SGD(trained, lr=1e-3)
    frames = []
    for step, width in enumerate((5, 9, 12, 7, 20, 3, 15, 11)):
        batch = collate([{"input_ids": list(range(5, 5 + width - i)), "index": i, "label": i % 2} for i in range(3)])
        torch.nn.functional.cross_entropy(forward.logits(model, batch), batch["labels"]).backward()
        opt.step()
        opt.zero_grad()
        frames.append(count.frame_count)
    torch._dynamo.reset()
    assert frames[0] >= 1, frames  # it did compile
    assert frames[-1] == frames[1], (method, frames)  # and nothing new after the second step
