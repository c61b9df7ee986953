"""runtime.py: peak memory that two runs in one process do not share."""

from __future__ import annotations

import sys

import pytest
import torch

from lightft.runtime import peak_memory_mb, reset_peak_memory


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the CPU peak reset is Linux's /proc/self/clear_refs")
def test_cpu_peak_memory_resets_between_runs():
    cpu = torch.device("cpu")
    big = torch.ones(300 * 2**20 // 4)  # 300 MiB, touched
    after_big = peak_memory_mb(cpu)
    del big
    reset_peak_memory(cpu)
    assert peak_memory_mb(cpu) < after_big - 200


def _tiny_peft(**lora):
    from peft import LoraConfig, get_peft_model
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    config = BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32)
    return get_peft_model(BertForSequenceClassification(config), LoraConfig(
        task_type="SEQ_CLS", r=4, target_modules=["query", "value"], **lora))


def test_bf16_storage_leaves_adapters_and_dora_bases_in_fp32():
    from lightft.runtime import store_frozen_in_bf16

    mica = _tiny_peft(init_lora_weights="mica")
    frozen_b = [p for n, p in mica.named_parameters() if "lora_B" in n and not p.requires_grad]
    assert frozen_b  # MiCA trains A only: B is frozen, and saved with the adapter
    assert store_frozen_in_bf16(mica, "bf16", torch.device("cpu")) > 0
    assert all(p.dtype == torch.float32 for p in frozen_b)
    assert mica.base_model.model.bert.encoder.layer[0].attention.self.key.weight.dtype == torch.bfloat16

    dora = _tiny_peft(use_dora=True)
    store_frozen_in_bf16(dora, "bf16", torch.device("cpu"))
    attention = dora.base_model.model.bert.encoder.layer[0].attention.self
    assert attention.query.base_layer.weight.dtype == torch.float32  # DoRA's weight norm reads it
    assert attention.key.weight.dtype == torch.bfloat16  # not adapted: cast as before


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_accelerator_never_compiles_after_a_compiling_one_in_the_same_process(monkeypatch, precision):
    """accelerate keeps one process-wide state: after a Trainer with torch_compile=True (or an Accelerator with a
    dynamo backend) in the same process, a later Accelerator compiled the whole model in ``prepare``, so a
    notebook's ``lightft.train`` without --compile silently compiled. lightft compiles only through --compile."""
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState
    from accelerate.utils import DynamoBackend

    from lightft.runtime import make_accelerator

    AcceleratorState._reset_state()
    mixed = "bf16" if precision == "bf16" else "no"  # the same precision: the old reset did not apply
    Accelerator(cpu=True, mixed_precision=mixed, dynamo_backend="inductor")  # what the Trainer leaves behind
    monkeypatch.setenv("ACCELERATE_DYNAMO_BACKEND", "inductor")  # nor does an `accelerate config` default apply
    try:
        accelerator = make_accelerator(torch.device("cpu"), precision)
        assert accelerator.state.dynamo_plugin.backend == DynamoBackend.NO
        model = accelerator.prepare(torch.nn.Linear(2, 2))
        assert not hasattr(model, "_orig_mod")  # not wrapped by torch.compile
    finally:
        AcceleratorState._reset_state()
