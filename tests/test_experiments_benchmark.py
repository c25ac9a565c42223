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
