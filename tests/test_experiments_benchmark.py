"""The MFU arithmetic of benchmarks/finetune.py, checked by hand."""
import importlib.util
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_finetune", REPO / "benchmarks" / "finetune.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_peak_flops_by_device_name(bench):
    assert bench.peak_tflops("NVIDIA H100 80GB HBM3") == 989.0
    assert bench.peak_tflops("NVIDIA H100 PCIe") == 756.0
    assert bench.peak_tflops("NVIDIA H200") == 989.0
    assert bench.peak_tflops("NVIDIA A100-SXM4-80GB") == 312.0
    assert bench.peak_tflops("Some Other GPU") is None


def test_matmul_parameters_leave_out_embeddings(bench):
    transformers = pytest.importorskip("transformers")
    config = transformers.BertConfig(vocab_size=500, hidden_size=32, num_hidden_layers=2,
                                     num_attention_heads=2, intermediate_size=64, num_labels=17)
    model = transformers.BertForTokenClassification(config)
    # per layer: attention 4*(32*32+32) + FFN (32*64+64 + 64*32+32) + 2 LayerNorms 2*2*32
    per_layer = 4 * (32 * 32 + 32) + (32 * 64 + 64 + 64 * 32 + 32) + 4 * 32
    # + embedding LayerNorm (2*32) + classifier (32*17+17); word/position/type tables left out
    assert bench.matmul_parameters(model) == (2 * per_layer + 2 * 32 + 32 * 17 + 17, 0)


@pytest.mark.parametrize("model_type", ["t5", "mt5"])  # tied (t5) and untied (mt5) output projection
def test_matmul_parameters_split_by_source_and_target_tokens(bench, model_type):
    transformers = pytest.importorskip("transformers")
    config = transformers.AutoConfig.for_model(model_type, vocab_size=300, d_model=32, d_ff=64, num_layers=1,
                                               num_decoder_layers=1, num_heads=2, d_kv=16)
    model = transformers.AutoModelForSeq2SeqLM.from_config(config)
    # no biases; inner attention width 2 heads x 16 = 32; relative-position tables are lookups
    attention, ffn = 4 * 32 * 32, 32 * 64 + 64 * 32
    if model_type == "mt5":  # gated FFN: wi_0, wi_1, wo
        ffn = 2 * 32 * 64 + 64 * 32
    encoder = attention + ffn + 2 * 32 + 32  # + 2 layer norms + final norm (weights only)
    # self- and cross-attention, FFN, 3 layer norms, final norm, output projection 300 x 32
    decoder = 2 * attention + ffn + 3 * 32 + 32 + 300 * 32
    cross_kv = 2 * 32 * 32  # cross-attention keys and values are computed per source token
    assert bench.matmul_parameters(model) == (encoder + cross_kv, decoder - cross_kv)


def test_training_flops_by_hand(bench):
    assert bench.training_flops(1_000, 0, 50) == 6 * 1_000 * 50
    # seq2seq: encoder parameters x source tokens + decoder parameters x target tokens
    assert bench.training_flops(1_000, 3_000, 50, 7) == 6 * (1_000 * 50 + 3_000 * 7)


def test_benchmark_reports_tokens_per_second_on_cpu(bench, tmp_path, capsys):
    import json

    import yaml

    pytest.importorskip("torch")
    study = {"name": "bench", "model": {"name": "tiny-t5", "tokenizer": {"train": True, "vocab_size": 300},
                                        "config": {"model_type": "t5", "d_model": 32, "d_ff": 64,
                                                   "num_layers": 1, "num_heads": 2, "d_kv": 16}},
             "tasks": [{"name": "xnli", "data": str(REPO / "tests" / "fixtures" / "tasks" / "xnli")}],
             "languages": ["eng"], "seeds": [1], "run_dir": str(tmp_path / "run"),
             "hyperparameters": {"batch_size": 4, "max_length": 32, "num_threads": 1}}
    path = tmp_path / "bench.yaml"
    path.write_text(yaml.safe_dump(study))
    assert bench.main(["--config", str(path), "--steps", "3", "--warmup-steps", "1"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["architecture"] == "seq2seq" and result["steps"] == 3 and result["device"] == "cpu"
    assert result["tokens"] == result["source_tokens"] + result["target_tokens"]
    assert result["source_tokens"] > 0 and result["target_tokens"] > 0  # decoder tokens counted
    assert result["tokens_per_s"] == pytest.approx(result["tokens"] / result["seconds"], rel=0.01)
    flops = bench.training_flops(result["source_token_parameters"], result["target_token_parameters"],
                                 result["source_tokens"], result["target_tokens"])
    assert result["model_tflops_per_s"] == pytest.approx(flops / result["seconds"] / 1e12, rel=1e-3, abs=1e-6)
    assert "mfu" not in result and result["bf16"] is False  # no GPU: no MFU, no autocast


@pytest.mark.gpu
def test_benchmark_reports_mfu_on_cuda(bench, tmp_path, capsys):
    import json

    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    config = tmp_path / "bench.yaml"
    config.write_text(
        "model: {name: small-bert, tokenizer: {train: true, vocab_size: 1000}, config: {model_type: bert, "
        "hidden_size: 256, num_hidden_layers: 4, num_attention_heads: 4, intermediate_size: 1024}}\n"
        f"tasks: [{{name: xnli, data: {REPO / 'tests' / 'fixtures' / 'tasks' / 'xnli'}}}]\n"
        f"languages: [eng]\nseeds: [1]\nrun_dir: {tmp_path / 'run'}\n")
    assert bench.main(["--config", str(config), "--synthetic", "128", "--steps", "10", "--peak-tflops", "989"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["bf16"] is True and result["peak_bf16_tflops"] == 989
    assert 0 < result["mfu"] < 1
    assert result["mfu"] == pytest.approx(result["model_tflops_per_s"] / 989, rel=1e-2)
