"""Which trainable tensors AdamW decays: matrices yes; biases, norms and adapters' scale vectors no."""

import pytest
import torch

from lightft.training.optim import build_optimizer, decays


@pytest.mark.parametrize("name, shape, expected", [
    ("base_model.model.bert.encoder.layer.0.attention.self.query.lora_A.default.weight", (1, 32), True),  # rank 1
    ("base_model.model.bert.encoder.layer.0.attention.self.query.lora_B.default.weight", (32, 8), True),
    ("base_model.model.classifier.modules_to_save.default.weight", (2, 32), True),
    ("base_model.model.bert.encoder.layer.0.attention.self.key.ia3_l.default", (32, 1), False),  # starts at 1
    ("base_model.model.bert.encoder.layer.0.output.dense.ia3_l.default", (1, 64), False),
    ("base_model.model.bert.encoder.layer.0.attention.self.query.boft_s.default", (32, 1), False),
    ("base_model.model.bert.encoder.layer.0.attention.self.query.lora_magnitude_vector.default.weight", (32,), False),
    ("bert.encoder.layer.0.output.LayerNorm.weight", (32,), False),
    ("classifier.bias", (2,), False),
])
def test_decays(name, shape, expected):
    assert decays(name, torch.zeros(shape)) is expected


def test_ia3_vectors_get_no_weight_decay():
    from peft import IA3Config, get_peft_model
    from transformers import BertConfig, BertForSequenceClassification

    config = BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32)
    model = get_peft_model(BertForSequenceClassification(config), IA3Config(
        task_type="SEQ_CLS", target_modules=["key", "value", "output.dense"], feedforward_modules=["output.dense"]))
    optimizer = build_optimizer(model, 1e-3, 0.01, torch.device("cpu"))
    decayed = {id(p) for g in optimizer.param_groups if g["weight_decay"] > 0 for p in g["params"]}
    ia3 = [p for n, p in model.named_parameters() if "ia3_l" in n]
    assert ia3 and not any(id(p) in decayed for p in ia3)
