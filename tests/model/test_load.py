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
