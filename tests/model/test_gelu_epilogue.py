"""The feed-forward GEMM + GELU epilogue swap: which layers it takes, and that the model's outputs stay the same.
On the CPU ``torch._addmm_activation`` is an addmm then the exact GELU, so the swap is run here by pretending the
device pays (``_pays_on``); the GPU's speed and error are measured by bench/gpu_gelu_epilogue.py."""

import pytest
import torch

import lightft.model.gelu_epilogue as ge
from lightft.runtime import store_frozen_in_bf16


def tiny_bert(act="gelu"):
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    config = BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=64, hidden_act=act)
    return BertForSequenceClassification(config).eval().requires_grad_(False)


@pytest.fixture
def pays(monkeypatch):
    monkeypatch.setattr(ge, "_pays_on", lambda device: True)


def logits(model):
    ids = torch.randint(1, 100, (3, 12), generator=torch.Generator().manual_seed(1))
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        return model(input_ids=ids).logits.float()


def test_swapped_layers_give_the_same_logits(pays):
    model = tiny_bert()
    store_frozen_in_bf16(model, "bf16", torch.device("cpu"))
    before = logits(model)
    assert ge.fuse_gelu_epilogue(model, "cpu") == 2
    assert torch.allclose(logits(model), before, atol=2e-2)


def test_nothing_is_swapped_where_it_does_not_apply(pays):
    assert ge.fuse_gelu_epilogue(tiny_bert(), "cpu") == 0  # fp32 weights: not an inference copy in bf16
    tanh = tiny_bert("gelu_new")  # the tanh approximation: the epilogue's GELU is the exact one
    store_frozen_in_bf16(tanh, "bf16", torch.device("cpu"))
    assert ge.fuse_gelu_epilogue(tanh, "cpu") == 0


def test_a_block_that_does_more_than_dense_then_gelu_is_left_alone(pays):
    from transformers import RobertaPreLayerNormConfig, RobertaPreLayerNormForSequenceClassification

    config = RobertaPreLayerNormConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                       intermediate_size=64)
    model = RobertaPreLayerNormForSequenceClassification(config).eval()  # LayerNorm, dense, GELU
    store_frozen_in_bf16(model, "bf16", torch.device("cpu"))
    assert ge.fuse_gelu_epilogue(model, "cpu") == 0


def test_a_lora_layer_on_the_dense_weight_is_left_alone(pays):
    from peft import LoraConfig, get_peft_model

    model = get_peft_model(tiny_bert(), LoraConfig(r=2, target_modules=["dense"]))
    store_frozen_in_bf16(model, "bf16", torch.device("cpu"))
    assert ge.fuse_gelu_epilogue(model, "cpu") == 0


def test_off_cuda_it_does_nothing():
    model = tiny_bert()
    store_frozen_in_bf16(model, "bf16", torch.device("cpu"))
    assert ge.fuse_gelu_epilogue(model, "cpu") == 0


def test_an_adapter_added_after_the_swap_runs_through_its_own_forward(pays):
    # lightft serve: the first run's model is swapped, then another run's LoRA may wrap the very dense layer
    from peft import LoraConfig, get_peft_model

    model = tiny_bert()
    store_frozen_in_bf16(model, "bf16", torch.device("cpu"))
    assert ge.fuse_gelu_epilogue(model, "cpu") == 2
    assert ge.fuse_gelu_epilogue(model, "cpu") == 0  # a second run on the same model: already swapped
    model = get_peft_model(model, LoraConfig(r=2, target_modules=["intermediate.dense"], init_lora_weights=False))
    with_lora = logits(model)
    with model.disable_adapter():
        without = logits(model)
    assert not torch.allclose(with_lora, without, atol=1e-3)  # the LoRA delta on the dense layer is applied
