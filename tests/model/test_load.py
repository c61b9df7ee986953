"""Loading an encoder: the weights come up in fp32 whatever dtype the checkpoint was saved in."""

import pytest
import torch

from lightft.data.labels import LabelMap
from lightft.model.load import load_model


@pytest.fixture(scope="module")
def bf16_model_dir(tiny_model_dir, tmp_path_factory):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    out = tmp_path_factory.mktemp("tiny-bert-bf16")
    model = AutoModelForSequenceClassification.from_pretrained(tiny_model_dir, dtype=torch.float32)
    model.to(torch.bfloat16).save_pretrained(out)
    AutoTokenizer.from_pretrained(tiny_model_dir).save_pretrained(out)
    return out


def test_a_bf16_checkpoint_loads_as_fp32_master_weights(bf16_model_dir):
    # transformers 5 keeps the file's dtype by default; training would then step bf16 weights directly
    model = load_model(str(bf16_model_dir), LabelMap(("neg", "pos")))
    assert {p.dtype for p in model.parameters()} == {torch.float32}


def test_training_from_a_bf16_checkpoint_keeps_fp32_weights(bf16_model_dir, tiny_data, tmp_path):
    import lightft
    from safetensors import safe_open

    run = lightft.train(model=str(bf16_model_dir), data=str(tiny_data), method="full", epochs=1, batch_size=8,
                        max_length=32, output=str(tmp_path / "run"), quiet=True, baseline=False)
    files = list((tmp_path / "run").rglob("*.safetensors"))
    assert files
    with safe_open(str(files[0]), "pt") as f:
        assert {f.get_slice(k).get_dtype() for k in f.keys()} == {"F32"}
    loaded = lightft.load(run.path, precision="fp32")
    assert {p.dtype for p in loaded.model.parameters()} == {torch.float32}


@pytest.mark.parametrize("saved_labels, kept", [
    (("LABEL_0", "LABEL_1"), "as is"),  # unnamed: nothing says what the rows mean
    (("pos", "neg"), "reordered"),  # the data's labels in another order: read by name
    (("sports", "politics"), "fresh"),  # other labels: a head for this data starts afresh
])
def test_a_checkpoints_own_head_is_read_by_label_name(saved_labels, kept, tmp_path):
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(1)
    config = BertConfig(vocab_size=100, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=16,
                        id2label=dict(enumerate(saved_labels)), label2id={n: i for i, n in enumerate(saved_labels)})
    saved = BertForSequenceClassification(config)
    weight, bias = saved.classifier.weight.detach(), saved.classifier.bias.detach() + torch.tensor([0.5, -0.5])
    saved.classifier.bias.data.copy_(bias)
    saved.save_pretrained(tmp_path)
    model = load_model(str(tmp_path), LabelMap(("neg", "pos")), seed=3)
    assert model.config.id2label == {0: "neg", 1: "pos"}
    if kept == "as is":
        assert torch.equal(model.classifier.weight, weight) and torch.equal(model.classifier.bias, bias)
    elif kept == "reordered":
        assert torch.equal(model.classifier.weight, weight[[1, 0]]) and torch.equal(model.classifier.bias, bias[[1, 0]])
    else:
        assert not torch.equal(model.classifier.weight, weight) and torch.equal(model.classifier.bias, torch.zeros(2))
        again = load_model(str(tmp_path), LabelMap(("neg", "pos")), seed=3)
        assert torch.equal(again.classifier.weight, model.classifier.weight)  # seeded: every method starts alike
