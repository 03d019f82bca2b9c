"""The first-run offer's model for this machine: the largest starter that fits with room to spare
and that the machine answers with quickly; the smallest is the Gemma 3 270M the test Hub serves."""

from __future__ import annotations

from desktop_app.domain.hub import Fit, GpuInfo, HardwareInfo
from desktop_app.domain.starter import STARTER_MODELS, pick_starter
from tests.unit.hub_models import GEMMA, GEMMA_FILE

GB = 10**9


def machine(ram: float, cores: int, gpus: tuple[GpuInfo, ...] = ()) -> HardwareInfo:
    return HardwareInfo(
        ram_total=int(ram * GB), ram_available=int(ram * GB), cpu_name="cpu", cpu_cores=cores, gpus=gpus
    )


def test_the_list_is_smallest_first_and_starts_with_the_model_the_test_hub_serves():
    sizes = [model.size for model in STARTER_MODELS]
    assert sizes == sorted(sizes)
    assert (STARTER_MODELS[0].repo, STARTER_MODELS[0].file) == (GEMMA, GEMMA_FILE)
    assert all(model.description and model.file.endswith(".gguf") for model in STARTER_MODELS)


def test_a_small_cpu_gets_the_smallest_model():
    pick = pick_starter(machine(ram=16, cores=2))
    assert pick is not None and pick.model is STARTER_MODELS[0]
    assert pick.verdict.fit is Fit.CPU and pick.verdict.text.startswith("Runs on the CPU: ")


def test_more_cores_and_memory_get_a_larger_model():
    assert pick_starter(machine(ram=16, cores=4)).model is STARTER_MODELS[1]
    assert pick_starter(machine(ram=32, cores=16)).model is STARTER_MODELS[3]
    assert pick_starter(machine(ram=3, cores=16)).model is STARTER_MODELS[1]  # memory bounds it too


def test_a_gpu_gets_the_largest_that_fits_half_its_memory():
    gpu = GpuInfo("RTX", vram_total=12 * GB, vram_free=12 * GB, vendor="nvidia")
    pick = pick_starter(machine(ram=8, cores=2, gpus=(gpu,)))
    assert pick.model is STARTER_MODELS[-1] and pick.verdict.fit is Fit.GPU


def test_nothing_when_not_even_the_smallest_fits():
    assert pick_starter(machine(ram=0.5, cores=2)) is None
