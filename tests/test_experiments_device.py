"""The GPU code path (bf16 autocast, device choice, padded widths) exercised on a CPU."""
import math
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from xltstats.errors import ConfigError
from xltstats.experiments import train as T
from xltstats.experiments.config import DEFAULT_HYPERPARAMETERS
from xltstats.experiments.tasks import get_task

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "tasks"
MODELS = {
    "encoder": {"model_type": "bert", "hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,
                "intermediate_size": 64, "max_position_embeddings": 64},
    "xlm-r": {"model_type": "xlm-roberta", "hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,
              "intermediate_size": 64, "max_position_embeddings": 80},
    "seq2seq": {"model_type": "t5", "d_model": 32, "d_ff": 64, "num_layers": 1, "num_heads": 2, "d_kv": 16},
    "mt5": {"model_type": "mt5", "d_model": 32, "d_ff": 64, "num_layers": 1, "num_heads": 2, "d_kv": 16},
}
ARCH = {"encoder": "encoder", "xlm-r": "encoder", "seq2seq": "seq2seq", "mt5": "seq2seq"}


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    texts = [" ".join(e["text"]) for lang in ("eng", "deu")
             for e in get_task("xnli").load(str(FIXTURES / "xnli"), lang, "train")]
    texts.append("yes maybe no xnli premise : hypothesis")
    return T.load_tokenizer(str(T.train_tokenizer(texts, tmp_path_factory.mktemp("tok") / "tok", 300)))


def test_device_choice(monkeypatch):
    monkeypatch.delenv("XLTSTATS_DEVICE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert T.pick_device().type == "cuda"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert T.pick_device().type == "cpu"
    monkeypatch.setenv("XLTSTATS_DEVICE", "cuda:1")
    with pytest.raises(ConfigError, match="CUDA is not available"):
        T.pick_device()
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert T.pick_device() == torch.device("cuda", 1)
    assert T.pick_device("cpu").type == "cpu"


def test_bf16_only_where_enabled():
    hp = dict(DEFAULT_HYPERPARAMETERS)
    assert T.uses_bf16(torch.device("cuda"), hp)
    assert not T.uses_bf16(torch.device("cuda"), dict(hp, bf16=False))
    assert not T.uses_bf16(torch.device("cpu"), hp)  # CPU: fp32 unless a test opts in


def test_dynamic_padding_width():
    feats = [{"input_ids": [5] * n, "labels": 0} for n in (3, 9, 5)]
    assert T.pad_batch(feats, 0)["input_ids"].shape == (3, 9)  # as wide as the longest, no more
    batch = T.pad_batch(feats, 0, multiple=8)  # the CUDA width
    assert batch["input_ids"].shape == (3, 16)
    assert batch["attention_mask"].sum(1).tolist() == [3, 9, 5]
    assert T.collate(feats, 0, torch.device("cpu"))["input_ids"].shape == (3, 9)


def test_length_grouped_batches_cover_everything_once_with_little_padding():
    lengths = [(i * 37) % 100 + 1 for i in range(400)]
    batches = T.length_grouped_batches(lengths, 16, torch.Generator().manual_seed(0), group=25)
    assert sorted(i for b in batches for i in b) == list(range(400))
    padded = sum(len(b) * max(lengths[i] for i in b) for b in batches)
    assert padded < 1.1 * sum(lengths)  # random batches would pad to ~1.9x here


@pytest.mark.parametrize("name", list(MODELS))
def test_train_and_predict_under_bf16_autocast(name, tokenizer, monkeypatch):
    """What runs on a GPU (bf16 autocast in training and evaluation), run here on the CPU."""
    monkeypatch.setattr(T, "BF16_DEVICE_TYPES", {"cuda", "cpu"})
    task, device = get_task("xnli"), torch.device("cpu")
    hp = dict(DEFAULT_HYPERPARAMETERS, batch_size=8, max_steps=3, learning_rate=1e-3, max_target_length=8,
              eval_batch_size=16)
    assert T.uses_bf16(device, hp)
    spec = {"name": "tiny", "config": MODELS[name], "tokenizer": "unused"}
    arch = T.architecture(spec)
    assert arch == ARCH[name]
    model = T.build_model(spec, task, arch, tokenizer, seed=1)
    examples = task.load(str(FIXTURES / "xnli"), "eng", "train")[:24]
    feats = T.encode(task, arch, tokenizer, examples, hp)
    linear = next(m for m in model.modules() if isinstance(m, torch.nn.Linear))
    seen = []
    linear.register_forward_hook(lambda mod, inp, out: seen.append(out.dtype))
    stats = T.train(model, feats, hp, seed=1, device=device, pad_id=tokenizer.pad_token_id, progress=False)
    assert stats["steps"] == 3 and math.isfinite(stats["loss"])
    assert seen and set(seen) == {torch.bfloat16}  # matmuls ran in bf16 ...
    assert all(p.dtype == torch.float32 for p in model.parameters())  # ... weights stayed fp32
    seen.clear()
    preds = T.predict(model, task, arch, tokenizer, examples, feats, hp, device, progress=False)
    assert set(seen) == {torch.bfloat16} and len(preds) == len(examples)
    assert all(p is None or p in range(len(task.labels)) or p == -1 for p in preds)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_path_bf16_fused_adamw_and_padded_batches(tokenizer):
    task, device = get_task("xnli"), T.pick_device()
    assert device.type == "cuda"
    hp = dict(DEFAULT_HYPERPARAMETERS, batch_size=8, max_steps=3, learning_rate=1e-3, max_length=48)
    model = T.build_model({"name": "tiny", "config": MODELS["encoder"], "tokenizer": "unused"}, task, "encoder",
                          tokenizer, seed=1).to(device)
    feats = T.encode(task, "encoder", tokenizer, task.load(str(FIXTURES / "xnli"), "eng", "train")[:24], hp)
    batch = T.collate(feats[:5], tokenizer.pad_token_id, device)
    assert batch["input_ids"].is_cuda and batch["input_ids"].shape[1] % 8 == 0
    stats = T.train(model, feats, hp, seed=1, device=device, pad_id=tokenizer.pad_token_id, progress=False)
    assert stats["steps"] == 3 and math.isfinite(stats["loss"])
