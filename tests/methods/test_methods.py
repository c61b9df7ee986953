"""Every method x architecture on tiny random models: what trains, what stays bit-identical, save/load, merge."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from transformers import AutoConfig, AutoModelForSequenceClassification

from lightft.config import TrainConfig
from lightft.data.labels import LabelMap
from lightft.errors import LightftError
from lightft.methods import METHODS, count_parameters, get_method
from lightft.methods.peft_methods import PeftMethod
from lightft.methods.targets import ia3_targets, resolve_targets
from lightft.model.heads import head_module_names

REPO = Path(__file__).resolve().parents[2]
TINY = dict(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
            max_position_embeddings=64)
ARCHS = {
    "bert": {},
    "roberta": {"pad_token_id": 1},
    "xlm-roberta": {"pad_token_id": 1},
    "distilbert": {"dim": 32, "n_layers": 2, "n_heads": 4, "hidden_dim": 64},
    "deberta-v2": {"pooler_hidden_size": 32, "relative_attention": True, "position_buckets": 8,
                   "pos_att_type": ["p2c", "c2p"]},
    "electra": {"embedding_size": 32},
    "mpnet": {},
    "modernbert": {"global_attn_every_n_layers": 1, "local_attention": 16, "pad_token_id": 0,
                   "bos_token_id": 2, "eos_token_id": 3, "cls_token_id": 2, "sep_token_id": 3},
}
HEADS = {"bert": ["classifier"], "roberta": ["classifier"], "xlm-roberta": ["classifier"],
         "distilbert": ["pre_classifier", "classifier"], "deberta-v2": ["pooler", "classifier"],
         "electra": ["classifier"], "mpnet": ["classifier"], "modernbert": ["head", "classifier"]}
LABELS = LabelMap(("a", "b", "c"))


def tiny_model(arch: str, seed: int = 0):
    config = AutoConfig.for_model(arch, **{**TINY, **ARCHS[arch]}, num_labels=3)
    torch.manual_seed(seed)
    return AutoModelForSequenceClassification.from_config(config).eval()


def batch(seed=1):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, 100, (4, 12), generator=g)
    mask = torch.ones_like(ids)
    mask[0, 8:] = 0
    return {"input_ids": ids, "attention_mask": mask, "labels": torch.tensor([0, 1, 2, 1])}


def logits(model, b):
    with torch.no_grad():
        return model(input_ids=b["input_ids"], attention_mask=b["attention_mask"]).logits


@pytest.mark.parametrize("arch", list(ARCHS))
def test_heads_are_found_structurally(arch):
    assert head_module_names(tiny_model(arch)) == HEADS[arch]


def _base_name(name: str) -> str:
    """Map a peft-wrapped parameter name back to the plain model's name."""
    for prefix in ("base_model.model.", "base_model."):  # adapters wrap the model once more than soft prompts
        name = name.removeprefix(prefix)
    return name.replace(".base_layer.", ".").replace(".original_module.", ".").replace(".modules_to_save.default.", ".")


# peft needs a key/value cache in the encoder for prefix tuning; these encoders take none in transformers 5.
UNSUPPORTED = {("prefix", arch): r"not supported for model type" for arch in ("distilbert", "deberta-v2", "mpnet",
                                                                              "modernbert")}
PEFT_METHODS = [name for name, m in METHODS.items() if isinstance(m, PeftMethod)]


def method_config(method: str, **extra) -> TrainConfig:
    # max_length: the tiny models have 64 positions, which soft prompts share with the text
    return TrainConfig(**{"model": "unused", "data": "unused", "method": method, "targets": "auto", "max_length": 32,
                          **extra})


def adapter_leftovers(model) -> list[str]:
    """Modules of a merged model that still belong to peft (any tuner layer, the head's wrapper, a prompt encoder)."""
    from peft.tuners.tuners_utils import BaseTunerLayer
    from peft.utils.other import AuxiliaryTrainingWrapper

    return [n for n, mod in model.named_modules()
            if isinstance(mod, (BaseTunerLayer, AuxiliaryTrainingWrapper)) or type(mod).__module__.startswith("peft.")]


def one_step(model, seed=1):
    model.train()
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    out = model(**batch(seed))
    out.loss.backward()
    opt.step()
    model.eval()


@pytest.mark.parametrize("method", list(METHODS))
@pytest.mark.parametrize("arch", list(ARCHS))
def test_one_step_trains_only_the_method_parameters(arch, method, tmp_path):
    cfg = method_config(method)
    m = get_method(method)
    if (method, arch) in UNSUPPORTED:
        with pytest.raises(LightftError, match=UNSUPPORTED[method, arch] + f".*{arch}"):
            m.attach(tiny_model(arch), cfg)
        return
    plain = dict(tiny_model(arch).named_parameters())
    model = m.attach(tiny_model(arch), cfg)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    head = HEADS[arch]
    in_head = lambda n: _base_name(n).split(".")[0] in head  # noqa: E731
    assert any(in_head(n) for n in trainable), "head must train"
    one_step(model)
    for n, p in model.named_parameters():
        changed = not torch.equal(p.detach(), before[n])
        if n not in trainable:
            assert not changed, f"frozen {n} changed"
            if _base_name(n) in plain:
                assert torch.equal(p.detach(), plain[_base_name(n)].detach()), f"base weight {n} was modified"
    own = [n for n in trainable if not in_head(n)]  # none for head, and for bitfit on bias-free ModernBERT
    assert not own or any(not torch.equal(dict(model.named_parameters())[n].detach(), before[n]) for n in own), \
        "the method's own parameters train"
    if method == "full":
        assert trainable == set(before)
    if method in ("head",):
        assert all(in_head(n) for n in trainable)
    if method == "bitfit":
        assert all(n.endswith(".bias") or in_head(n) for n in trainable)
    if method in PEFT_METHODS:  # only adapter (or prompt) tensors and the head: no weight of the model itself
        assert all(in_head(n) or _base_name(n) not in plain for n in trainable), sorted(trainable)[:5]

    # save -> load gives identical logits (merged where the method merges)
    expected = logits(model, batch(2))
    m.save(model, tmp_path)
    base_dir = tmp_path / "base"
    tiny_model(arch).save_pretrained(base_dir)  # the frozen base the run was trained from (same seed)
    cfg.model = str(base_dir)
    reloaded = m.load(cfg, LABELS, tmp_path).eval()
    torch.testing.assert_close(logits(reloaded, batch(2)), expected, atol=1e-4, rtol=1e-4)
    if m.mergeable:
        assert not adapter_leftovers(reloaded), "merged model keeps no adapter"
        assert type(reloaded) is type(tiny_model(arch))


def test_a_merge_that_changes_the_logits_is_refused(tmp_path, monkeypatch):
    """peft 0.22 changed what unloading a head wrapper returns, and merged runs silently predicted with an untrained
    head; a merge that changes the model's function now fails loading with one line instead."""
    from peft.tuners.lora import LoraModel

    m = get_method("lora")
    model = m.attach(tiny_model("bert"), method_config("lora"))
    one_step(model)
    m.save(model, tmp_path)
    tiny_model("bert").save_pretrained(tmp_path / "base")
    cfg = method_config("lora", model=str(tmp_path / "base"))
    merge = LoraModel.merge_and_unload

    def untrained_head(self, *args, **kwargs):  # what peft 0.22 did to lightft's merge
        plain = merge(self, *args, **kwargs)
        plain.classifier = tiny_model("bert").classifier
        return plain

    monkeypatch.setattr(LoraModel, "merge_and_unload", untrained_head)
    with pytest.raises(LightftError, match=r"^merging the adapter into the base weights changed its logits by up to "
                                           r"[0-9.e-]+ with peft [0-9.]+.*metrics.json: environment.peft.*merge=False"):
        m.load(cfg, LABELS, tmp_path)
    assert m.load(cfg, LABELS, tmp_path, merge=False) is not None  # unmerged, it loads


@pytest.mark.parametrize("method,init", [("lora", "gaussian"), ("lora", "orthogonal"), ("lora", "pissa"),
                                         ("lora", "olora"), ("lora", "mica"), ("rslora", "pissa"), ("dora", "olora")])
def test_lora_initialisations_round_trip(method, init, tmp_path):
    """PiSSA/OLoRA move part of each base weight into the adapter; the saved adapter must still apply to the
    original weights, with the head, and merge to the same logits."""
    arch = "roberta"
    m = get_method(method)
    model = m.attach(tiny_model(arch), method_config(method, init=init))
    one_step(model)
    expected = logits(model, batch(2))
    m.save(model, tmp_path)
    tiny_model(arch).save_pretrained(tmp_path / "base")
    reloaded = m.load(method_config(method, model=str(tmp_path / "base")), LABELS, tmp_path).eval()
    torch.testing.assert_close(logits(reloaded, batch(2)), expected, atol=1e-4, rtol=1e-4)
    saved = json.loads((tmp_path / "adapter_config.json").read_text())
    if init in ("pissa", "olora"):  # converted: a plain rank-2r LoRA adapter, loading never re-runs the SVD/QR
        assert saved["r"] == 16 and saved["init_lora_weights"] is True
        assert saved["lora_alpha"] == pytest.approx(16 * (2**0.5 if method == "rslora" else 2))
    else:
        assert saved["r"] == 8 and saved["init_lora_weights"] == init


def test_init_combinations_are_checked_up_front():
    with pytest.raises(LightftError, match="--init orthogonal needs an even --rank"):
        TrainConfig(model="x", data="y", init="orthogonal", rank=5).validate()
    with pytest.raises(LightftError, match="--init mica cannot be combined with --method dora"):
        TrainConfig(model="x", data="y", init="mica", method="dora").validate()
    with pytest.raises(LightftError, match="--init must be one of default, gaussian, orthogonal, pissa, olora, mica"):
        TrainConfig(model="x", data="y", init="eva").validate()
    with pytest.raises(LightftError, match=r"--num-virtual-tokens must be a whole number >= 1, got 0"):
        TrainConfig(model="x", data="y", num_virtual_tokens=0).validate()


def test_ia3_targets_keys_values_and_the_ffn_output():
    model = tiny_model("bert")
    t = ia3_targets(model, "auto", head_module_names(model))
    short = sorted({n.split("layer.0.", 1)[1] for n in t.modules if "layer.0." in n})
    assert short == ["attention.self.key", "attention.self.value", "output.dense"]  # not attention.output.dense
    assert t.feedforward == [n for n in t.modules if n.endswith(".output.dense")]
    t = ia3_targets(tiny_model("distilbert"), "auto", ["pre_classifier", "classifier"])
    assert [n.rsplit(".", 1)[1] for n in t.feedforward] == ["lin2", "lin2"]


def test_prefix_on_an_encoder_without_a_cache_names_the_architecture():
    with pytest.raises(LightftError, match=r"--method prefix is not supported for model type 'distilbert'.*"
                                           r"use --method prompt or --method ptuning"):
        get_method("prefix").attach(tiny_model("distilbert"), method_config("prefix"))


def test_virtual_tokens_must_fit_the_positions():
    with pytest.raises(LightftError, match=r"--max-length 60 plus --num-virtual-tokens 20 exceeds the 62 positions"):
        get_method("prompt").attach(tiny_model("roberta"), method_config("prompt", max_length=60))


@pytest.mark.parametrize("method", ["oft", "boft"])
def test_block_size_must_divide_the_features(method):
    with pytest.raises(LightftError, match=rf"--block-size 5 must divide the input features of every target of "
                                           rf"--method {method} \(32, 64 in this bert model\)"):
        get_method(method).attach(tiny_model("bert"), method_config(method, block_size=5, targets="all-linear"))


def test_adapter_that_does_not_fit_the_model_is_a_clear_error():
    with pytest.raises(LightftError, match=r"--method fourierft does not fit this bert model: .*n_frequency"):
        get_method("fourierft").attach(tiny_model("bert"), method_config("fourierft", n_frequency=5000))


def test_lora_r8_on_bert_base_cased_trains_about_0_27_percent():
    config = AutoConfig.from_pretrained(REPO / "bench" / "bert-base-cased.config.json", num_labels=2)
    model = AutoModelForSequenceClassification.from_config(config)
    model = get_method("lora").attach(model, TrainConfig(model="x", data="y", rank=8))
    counts = count_parameters(model)
    share = 100 * counts["trainable"] / counts["total"]
    print(f"LoRA r=8 on BERT-base-cased: {counts['trainable']:,} of {counts['total']:,} trainable = {share:.4f}%")
    # 12 layers x (query, value) x (768x8 + 8x768) + classifier 768x2+2 = 296,450
    assert counts["trainable"] == 12 * 2 * (768 * 8 * 2) + 768 * 2 + 2
    assert share == pytest.approx(0.27, abs=0.01)


def test_unknown_target_lists_candidates():
    model = tiny_model("bert")
    with pytest.raises(LightftError, match=r"--targets 'qkv': no module named 'qkv' in this bert model; candidates "
                                           r"are: dense, key, query, value"):
        resolve_targets(model, "qkv", head_module_names(model))


def test_auto_targets_per_architecture():
    assert resolve_targets(tiny_model("distilbert"), "auto", []) == ["q_lin", "v_lin"]
    assert resolve_targets(tiny_model("mpnet"), "auto", []) == ["q", "v"]
    assert resolve_targets(tiny_model("modernbert"), "auto", []) == ["Wqkv"]


def test_unknown_method():
    with pytest.raises(LightftError, match=r"unknown method 'xyz'; choose one of: head, lora, dora, rslora, adalora, "
                                           r"ia3, .*, bitfit, full"):
        get_method("xyz")
    for typed in ("qlora", "LoRA"):  # a near miss, another case
        with pytest.raises(LightftError, match=rf"unknown method '{typed}' \(did you mean 'lora'\?\); choose one of"):
            get_method(typed)


def test_unknown_methods_and_config_keys_get_a_suggestion():
    from lightft.comparison import parse_methods

    with pytest.raises(LightftError, match=r"unknown method\(s\) in --methods: Full \(did you mean 'full'\?\); choose"):
        parse_methods("baseline,Full")
    with pytest.raises(LightftError, match=r"^--methods is empty; pass a comma-separated list such as baseline,lora,full"):
        parse_methods(" , ")
    with pytest.raises(LightftError, match=r"^--methods all stands alone \(it is every method and the baseline\), got "
                                           r"all,lora; pass all, or list the methods$"):
        parse_methods("all,lora")
    with pytest.raises(LightftError, match=r"unknown config key\(s\) epochz \(did you mean 'epochs'\?\); expected"):
        TrainConfig.from_dict({"epochz": 3})


def test_lora_adapter_is_standard_peft(tmp_path):
    model = get_method("lora").attach(tiny_model("roberta"), TrainConfig(model="x", data="y"))
    get_method("lora").save(model, tmp_path)
    cfg = json.loads((tmp_path / "adapter_config.json").read_text())
    assert cfg["peft_type"] == "LORA" and "classifier" in cfg["modules_to_save"]
    from safetensors.torch import load_file

    keys = load_file(tmp_path / "adapter_model.safetensors")
    assert any("classifier" in k and "out_proj" in k for k in keys), "RoBERTa head (dense + out_proj) is saved"
