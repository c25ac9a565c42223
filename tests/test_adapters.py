"""Bottleneck / NICE adapters without AdapterHub: placement, merging, compositions, the AdapterHub
checkpoint converter, and LoRA arithmetic through peft."""
from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from xltstats.errors import ConfigError, InputError  # noqa: E402
from xltstats.experiments import adapters as A  # noqa: E402
from xltstats.experiments.adapter_study import ACTIVATION_NAMES  # noqa: E402

H = 32


def bert(seed=0, cls=None):
    from transformers import BertConfig, BertForMaskedLM

    torch.manual_seed(seed)
    config = BertConfig(vocab_size=90, hidden_size=H, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    return (cls or BertForMaskedLM)(config).eval()


MADX = A.AdapterConfig(reduction_factor=2, non_linearity="gelu_new", inv_adapter="nice",
                       inv_adapter_reduction_factor=2)
IDS = torch.randint(5, 90, (3, 9), generator=torch.Generator().manual_seed(1))


def trained_like(model, name, seed):
    """An adapter whose weights are far from the N(0, 0.02) initialisation (as after training)."""
    A.add_adapter(model, name, MADX, seed=seed)
    state = A.adapter_state(model, name)
    g = torch.Generator().manual_seed(seed + 100)
    state.tensors = {k: torch.randn(v.shape, generator=g) * 0.3 for k, v in state.tensors.items()}
    A.remove_adapter(model, name)
    A.load_adapter_state(model, state)
    return state


@torch.no_grad()
def logits(model, composition):
    A.set_active(model, composition)
    return model(IDS).logits


def test_activation_names_match():
    assert tuple(A.ACTIVATIONS) == ACTIVATION_NAMES


def test_state_dict_names_follow_adapterhub():
    model = bert()
    A.add_adapter(model, "ara", MADX, seed=3)
    names = [k for k in model.state_dict() if "adapter" in k]
    assert "bert.encoder.layer.1.output.adapters.ara.adapter_down.0.weight" in names
    assert "bert.encoder.layer.0.output.adapters.ara.adapter_up.bias" in names
    assert {"bert.invertible_adapters.ara.F.0.weight", "bert.invertible_adapters.ara.F.2.weight",
            "bert.invertible_adapters.ara.G.0.weight", "bert.invertible_adapters.ara.G.2.bias"} <= set(names)
    assert model.bert.encoder.layer[0].output.adapters["ara"].adapter_down[0].out_features == H // 2


@torch.no_grad()
def test_pfeiffer_placement_matches_the_formula():
    """out = LN(h1 + up(act(down(h1))) + x) with h1 = LN(dense(i) + x), the layer's own LN twice."""
    model = bert()
    config = A.AdapterConfig(reduction_factor=4, non_linearity="relu")
    A.add_adapter(model, "a", config, seed=1)
    A.set_active(model, "a")
    out = model.bert.encoder.layer[0].output
    inter, x = torch.randn(2, 5, 64), torch.randn(2, 5, H)
    adapter = out.adapters["a"]
    h1 = out.LayerNorm(out.dense(inter) + x)
    expected = out.LayerNorm(h1 + adapter.adapter_up(torch.relu(adapter.adapter_down[0](h1))) + x)
    assert torch.allclose(out(inter, x), expected, atol=1e-6)
    A.set_active(model, None)
    assert torch.allclose(out(inter, x), out.LayerNorm(out.dense(inter) + x))


@torch.no_grad()
def test_nice_is_invertible_and_applied_around_the_model():
    model = bert()
    state = trained_like(model, "a", 1)
    inv = model.bert.invertible_adapters["a"]
    h = torch.randn(4, 7, H)
    assert torch.allclose(inv(inv(h), rev=True), h, atol=1e-5)
    assert not torch.allclose(inv(h), h)
    # without the invertible part the output changes: it is used
    plain = A.AdapterState("b", A.AdapterConfig(reduction_factor=2, non_linearity="gelu_new"),
                           {k: v for k, v in state.tensors.items() if not k.startswith("invertible.")})
    A.load_adapter_state(model, plain)
    assert not torch.allclose(logits(model, "a"), logits(model, "b"))


@torch.no_grad()
def test_lambda_one_and_zero_reproduce_the_two_adapters_exactly():
    model = bert()
    s1, s2 = trained_like(model, "eng", 1), trained_like(model, "spa", 2)
    l1, l2 = logits(model, "eng"), logits(model, "spa")
    assert not torch.allclose(l1, l2)
    for lam, expected in ((1.0, l1), (0.0, l2)):
        merged = A.merge_adapters([s1, s2], [lam, 1 - lam], name=f"m{int(lam)}")
        A.load_adapter_state(model, merged)
        assert torch.equal(logits(model, merged.name), expected)


def test_every_merged_tensor_is_linear_in_lambda():
    model = bert()
    s1, s2 = trained_like(model, "eng", 1), trained_like(model, "spa", 2)
    assert any(k.startswith("invertible.") for k in s1.tensors)
    assert len(s1.tensors) == 2 * 4 + 8  # 2 layers x (down w, b, up w, b) + NICE F/G x 2 linears
    for lam in (-0.5, 0.0, 0.3, 0.7, 1.0, 1.5):
        merged = A.merge_adapters([s1, s2], [lam, 1 - lam])
        assert set(merged.tensors) == set(s1.tensors)
        for key, value in merged.tensors.items():
            expected = lam * s1.tensors[key].double() + (1 - lam) * s2.tensors[key].double()
            assert torch.allclose(value.double(), expected, atol=1e-6, rtol=0), key
    # the second difference in lambda is zero for every tensor
    m = {lam: A.merge_adapters([s1, s2], [lam, 1 - lam]).tensors for lam in (0.2, 0.5, 0.8)}
    for key in s1.tensors:
        assert torch.allclose(m[0.2][key] + m[0.8][key], 2 * m[0.5][key], atol=1e-6), key


def test_merge_refuses_different_configurations():
    model = bert()
    s1 = trained_like(model, "eng", 1)
    for change, field in ((dict(non_linearity="relu"), "non_linearity"),
                          (dict(reduction_factor=4), "reduction_factor"),
                          (dict(inv_adapter=None), "inv_adapter")):
        other_config = A.AdapterConfig(**{**MADX.to_dict(), **change})
        other = bert()
        A.add_adapter(other, "x", other_config, seed=2)
        with pytest.raises(ConfigError, match=f"different configurations.*{field}"):
            A.merge_adapters([s1, A.adapter_state(other, "x")], [0.5, 0.5])
    with pytest.raises(ConfigError, match="one weight per adapter"):
        A.merge_adapters([s1, s1], [1.0])


@torch.no_grad()
def test_compositions_differ_and_fusion_is_deterministic_for_a_seed():
    tagger = transformers.BertForTokenClassification  # output averaging has no inverse for an MLM head
    model = bert(cls=tagger)
    s1, s2 = trained_like(model, "eng", 1), trained_like(model, "spa", 2)
    merged = A.merge_adapters([s1, s2], [0.5, 0.5], name="avg")
    A.load_adapter_state(model, merged)
    param_avg = logits(model, "avg")
    out_avg = logits(model, A.Average(("eng", "spa")))
    assert (param_avg - out_avg).abs().max() > 1e-3  # parameter averaging is not output averaging
    fused = logits(model, A.Fuse(("eng", "spa"), seed=3))
    again = bert(cls=tagger)  # a fresh model with the same adapters: the same untrained fusion
    A.load_adapter_state(again, s1)
    A.load_adapter_state(again, s2)
    assert torch.equal(logits(again, A.Fuse(("eng", "spa"), seed=3)), fused)
    assert not torch.allclose(logits(again, A.Fuse(("eng", "spa"), seed=4)), fused)
    stacked = logits(model, A.Stack("eng", "spa"))
    assert not torch.allclose(stacked, logits(model, "eng"))
    with pytest.raises(ConfigError, match="no adapter 'deu'"):
        A.set_active(model, A.Stack("deu", "eng"))


def test_same_seed_same_initialisation_in_any_model():
    a, b = bert(0), bert(5)
    A.add_adapter(a, "x", MADX, seed=42)
    A.add_adapter(b, "y", MADX, seed=42)
    ta, tb = A.adapter_state(a, "x").tensors, A.adapter_state(b, "y").tensors
    assert all(torch.equal(ta[k], tb[k]) for k in ta)


def _hub_checkpoint(folder, *, prefix="bert", name="en", config_changes=None, layers=2, inv=True):
    """An AdapterHub (adapter-transformers 3.x) checkpoint folder, built by hand."""
    folder.mkdir(parents=True)
    config = {"mh_adapter": False, "output_adapter": True, "reduction_factor": 2,
              "non_linearity": "relu", "original_ln_before": True, "original_ln_after": True,
              "residual_before_ln": True, "ln_before": False, "ln_after": False,
              "adapter_residual_before_ln": False, "init_weights": "bert", "is_parallel": False,
              "scaling": 1.0, "use_gating": False, "phm_layer": False,
              "inv_adapter": "nice" if inv else None, "inv_adapter_reduction_factor": 2 if inv else None}
    config.update(config_changes or {})
    (folder / "adapter_config.json").write_text(json.dumps(
        {"config": config, "hidden_size": H, "model_class": "BertForMaskedLM",
         "model_name": "bert-base-multilingual-cased", "model_type": "bert", "name": name,
         "version": "3.2.1"}))
    g = torch.Generator().manual_seed(7)
    weights = {}
    for i in range(layers):
        base = f"{prefix}.encoder.layer.{i}.output.adapters.{name}."
        weights[base + "adapter_down.0.weight"] = torch.randn(H // 2, H, generator=g)
        weights[base + "adapter_down.0.bias"] = torch.randn(H // 2, generator=g)
        weights[base + "adapter_up.weight"] = torch.randn(H, H // 2, generator=g)
        weights[base + "adapter_up.bias"] = torch.randn(H, generator=g)
    if inv:
        base = f"{prefix}.invertible_adapters.{name}."
        weights[base + "F.0.weight"] = torch.randn(8, 16, generator=g)
        weights[base + "F.0.bias"] = torch.randn(8, generator=g)
        weights[base + "F.2.weight"] = torch.randn(16, 8, generator=g)
        weights[base + "F.2.bias"] = torch.randn(16, generator=g)
        weights[base + "G.0.weight"] = torch.randn(8, 16, generator=g)
        weights[base + "G.0.bias"] = torch.randn(8, generator=g)
        weights[base + "G.2.weight"] = torch.randn(16, 8, generator=g)
        weights[base + "G.2.bias"] = torch.randn(16, generator=g)
    torch.save(weights, folder / "pytorch_adapter.bin")
    return weights


def test_converter_reads_an_adapterhub_checkpoint(tmp_path):
    weights = _hub_checkpoint(tmp_path / "en")
    state = A.read_adapter(tmp_path / "en")
    assert state.name == "en" and state.config.non_linearity == "relu"
    assert state.config.inv_adapter == "nice" and state.config.reduction_factor == 2
    model = bert()
    A.load_adapter_state(model, state)
    sd = model.state_dict()
    for key, value in weights.items():
        assert torch.equal(sd[key], value), key  # same names, same tensors
    # our own writer gives the same layout back
    A.save_adapter(state, tmp_path / "copy")
    again = A.read_adapter(tmp_path / "copy")
    assert again.config == state.config and all(torch.equal(again.tensors[k], state.tensors[k])
                                                for k in state.tensors)
    # an XLM-R checkpoint uses the "roberta." prefix
    _hub_checkpoint(tmp_path / "xlmr", prefix="roberta", name="sw", inv=False)
    assert A.read_adapter(tmp_path / "xlmr").config.inv_adapter is None


def test_converter_refuses_what_it_cannot_represent(tmp_path):
    _hub_checkpoint(tmp_path / "houlsby", config_changes={"mh_adapter": True})
    with pytest.raises(InputError, match="mh_adapter=True is not supported") as caught:
        A.read_adapter(tmp_path / "houlsby")
    assert "adapter_config.json" in str(caught.value) and caught.value.column == "config.mh_adapter"
    _hub_checkpoint(tmp_path / "noinv", config_changes={"inv_adapter": None})
    with pytest.raises(InputError, match="invertible"):
        A.read_adapter(tmp_path / "noinv")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no adapter_config.json"):
        A.read_adapter(tmp_path / "empty")
    _hub_checkpoint(tmp_path / "three", layers=3)
    with pytest.raises(ConfigError, match="does not fit this model"):
        A.load_adapter_state(bert(), A.read_adapter(tmp_path / "three"))


@torch.no_grad()
def test_t5_feed_forward_adapter():
    from transformers import T5Config, T5EncoderModel

    torch.manual_seed(0)
    model = T5EncoderModel(T5Config(vocab_size=90, d_model=H, d_ff=64, num_layers=2, num_heads=2,
                                    d_kv=16, dropout_rate=0.0)).eval()
    config = A.AdapterConfig(reduction_factor=2, non_linearity="relu")
    A.add_adapter(model, "a", config, seed=1)
    A.add_adapter(model, "b", config, seed=2)
    assert any(".layer.1.adapters.a.adapter_up.weight" in k for k in model.state_dict())
    base = model(IDS).last_hidden_state
    A.set_active(model, "a")
    with_a = model(IDS).last_hidden_state
    assert not torch.allclose(base, with_a)
    merged = A.merge_adapters([A.adapter_state(model, "a"), A.adapter_state(model, "b")], [1.0, 0.0])
    A.load_adapter_state(model, merged)
    A.set_active(model, "merged")
    assert torch.equal(model(IDS).last_hidden_state, with_a)
    with pytest.raises(ConfigError, match="invertible adapters"):
        A.add_adapter(model, "c", MADX)


def test_lora_arithmetic_uses_cat_and_linear_differs():
    peft = pytest.importorskip("peft")
    model = bert(cls=transformers.BertForTokenClassification)
    config = peft.LoraConfig(r=2, lora_alpha=4, target_modules=["query", "value"], init_lora_weights=False)
    pm = peft.get_peft_model(model, config, adapter_name="eng")
    pm.add_adapter("spa", peft.LoraConfig(r=2, lora_alpha=4, target_modules=["query", "value"],
                                          init_lora_weights=False))
    d1, d2 = A.lora_delta(pm, "eng"), A.lora_delta(pm, "spa")
    weights = (0.7, 0.3)
    A.lora_weighted_adapter(pm, ["eng", "spa"], weights, "la_cat", combination_type="cat")
    A.lora_weighted_adapter(pm, ["eng", "spa"], weights, "la_linear", combination_type="linear")
    cat, linear = A.lora_delta(pm, "la_cat"), A.lora_delta(pm, "la_linear")
    worst_cat = worst_linear = 0.0
    for name in d1:
        expected = weights[0] * d1[name] + weights[1] * d2[name]
        worst_cat = max(worst_cat, float((cat[name] - expected).abs().max()))
        worst_linear = max(worst_linear, float((linear[name] - expected).abs().max()))
    assert worst_cat < 1e-6  # cat is the weighted sum of the LoRA updates
    assert worst_linear > 1e-3  # linear is not (cross terms of the averaged factors)
    with pytest.raises(ConfigError, match="cat"):
        A.lora_weighted_adapter(pm, ["eng", "spa"], weights, "x", combination_type="svd")


def test_adapter_weight_similarity_is_a_pair_feature(tmp_path):
    import numpy as np

    from xltstats.studies.influence import adapter_similarity

    model = bert()
    s1, s2 = trained_like(model, "eng", 1), trained_like(model, "spa", 2)
    A.save_adapter(s1, tmp_path / "lang_adapter-eng")
    A.save_adapter(s2, tmp_path / "lang_adapter-spa")
    x = np.concatenate([s1.tensors[k].numpy().ravel() for k in sorted(s1.tensors)])
    y = np.concatenate([s2.tensors[k].numpy().ravel() for k in sorted(s2.tensors)])
    cosine = 1 - x @ y / (np.linalg.norm(x) * np.linalg.norm(y))
    table = adapter_similarity({"eng": tmp_path / "lang_adapter-eng", "spa": tmp_path / "lang_adapter-spa"})
    assert table[["source", "target"]].values.tolist() == [["eng", "spa"], ["spa", "eng"]]
    assert np.allclose(table["adapter_cosine_distance"], cosine, atol=1e-6)
    assert np.allclose(table["adapter_l2_distance"], np.linalg.norm(x - y), rtol=1e-6)


def test_saved_adapter_is_the_same_bytes_each_time_and_replaces_atomically(tmp_path):
    # torch.save names its archive after the file, so the files are written under their final
    # names inside the partial folder (never as a temporary file renamed afterwards)
    state = trained_like(bert(), "eng", 1)
    head = {"weight": torch.ones(2, H)}
    A.save_adapter(state, tmp_path / "a", head=head)
    A.save_adapter(state, tmp_path / "b", head=head)
    names = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert names == ["COMPLETE", "adapter_config.json", "pytorch_adapter.bin", "pytorch_model_head.bin"]
    first = {n: (tmp_path / "a" / n).read_bytes() for n in names}
    assert first == {n: (tmp_path / "b" / n).read_bytes() for n in names}
    other = trained_like(bert(), "eng", 2)
    A.save_adapter(other, tmp_path / "a")  # replaces the folder: the old head does not stay
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == [n for n in names if "head" not in n]
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]
    again = A.read_adapter(tmp_path / "a")
    assert all(torch.equal(again.tensors[k], other.tensors[k]) for k in other.tensors)
