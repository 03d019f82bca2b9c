"""The pure side of Hugging Face models: files grouped into models, quantisations from names, the
KV-cache shape from header numbers."""

from __future__ import annotations

from desktop_app.domain.hub import (
    HubFile,
    ModelShape,
    estimate_memory,
    group_quant_files,
    quantisation_from_name,
    shape_from_metadata,
)


def test_quantisation_from_file_names():
    assert quantisation_from_name("gemma-3-1b-it-Q4_K_M.gguf") == "Q4_K_M"
    assert quantisation_from_name("Qwen3-30B-A3B-UD-IQ2_XXS-00001-of-00002.gguf") == "IQ2_XXS"
    assert quantisation_from_name("sub/model.f16.gguf") == "F16"
    assert quantisation_from_name("mmproj-model-bf16.gguf") == "BF16"
    assert quantisation_from_name("model.gguf") == ""


def test_split_parts_are_one_model_and_an_incomplete_split_is_left_out():
    files = [
        HubFile("big-Q8_0-00002-of-00002.gguf", 200, "b"),
        HubFile("big-Q8_0-00001-of-00002.gguf", 100, "a"),
        HubFile("odd-Q2_K-00001-of-00003.gguf", 10),  # parts 2 and 3 are missing
        HubFile("small-Q4_0.gguf", 50),
        HubFile("README.md", 1),
    ]
    models = group_quant_files(files)
    assert [(m.name, m.size, len(m.parts)) for m in models] == [
        ("small-Q4_0.gguf", 50, 1),
        ("big-Q8_0-00001-of-00002.gguf", 300, 2),
    ]
    assert [p.sha256 for p in models[1].parts] == ["a", "b"]


def test_shape_from_header_numbers_with_and_without_optional_keys():
    numbers = {"llama.block_count": 32, "llama.attention.head_count": 32, "llama.embedding_length": 4096}
    assert shape_from_metadata("llama", numbers) == ModelShape(32, 32, 128, 128, None)  # no GQA, 4096 / 32
    numbers |= {"llama.attention.head_count_kv": 8, "llama.context_length": 131072}
    assert shape_from_metadata("llama", numbers) == ModelShape(32, 8, 128, 128, 131072)
    assert shape_from_metadata("qwen2", numbers) is None  # another architecture's keys
    # Llama 3 8B at 8,192 tokens: 2 * 32 layers * 8192 * 8 heads * 128 * 2 bytes = 1 GiB
    assert ModelShape(32, 8, 128, 128).kv_cache_bytes(8192) == 1024**3


def test_an_unknown_shape_counts_the_weights_alone():
    estimate = estimate_memory(1_000_000, None, 4096)
    assert (estimate.weights, estimate.kv_cache) == (1_000_000, 0) and estimate.total > estimate.weights
