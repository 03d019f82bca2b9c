"""Hardware detection: the vendors' tools parsed from their documented output, the live path on
this machine (no GPU tools: RAM and CPU only), and a tool that fails (a note, never an error)."""

from __future__ import annotations

import os
import stat

import pytest

from desktop_app.domain.hub import Fit, GpuInfo, HardwareInfo, ModelShape, estimate_memory, fit_verdict
from desktop_app.services.local.hardware import (
    detect_hardware,
    parse_cpuinfo,
    parse_meminfo,
    parse_nvidia_smi,
    parse_rocm_smi,
    parse_vulkaninfo,
)

MIB, GIB = 1024**2, 1024**3

# nvidia-smi --query-gpu=name,memory.total,memory.free --format=csv
NVIDIA_CSV = """name, memory.total [MiB], memory.free [MiB]
NVIDIA GeForce RTX 3090, 24576 MiB, 23854 MiB
Tesla V100-SXM2-16GB, 16160 MiB, [N/A]
"""
# the same with --format=csv,noheader,nounits
NVIDIA_BARE = "NVIDIA GeForce RTX 4060 Laptop GPU, 8188, 7948\n"
# rocm-smi --showproductname --showmeminfo vram --json
ROCM_JSON = (
    '{"card0": {"Card series": "AMD Instinct MI210", "Card model": "0x0c34", '
    '"Card vendor": "Advanced Micro Devices, Inc. [AMD/ATI]", "Card SKU": "D67301", '
    '"VRAM Total Memory (B)": "68702699520", "VRAM Total Used Memory (B)": "11124736"}, '
    '"card1": {"Card Series": "Radeon RX 7900 XTX", "VRAM Total Memory (B)": "25753026560", '
    '"VRAM Total Used Memory (B)": "1000000000"}}'
)
# vulkaninfo (the full report), trimmed to the parts read: a discrete GPU and the llvmpipe
# software renderer Mesa installs next to it
VULKANINFO = """\
==========
VULKANINFO
==========

Vulkan Instance Version: 1.3.275

Device Properties and Extensions:
=================================
GPU0:
VkPhysicalDeviceProperties:
---------------------------
\tapiVersion        = 1.3.242 (4206834)
\tdriverVersion     = 535.54.3.0 (2246819840)
\tvendorID          = 0x10de
\tdeviceID          = 0x2484
\tdeviceType        = PHYSICAL_DEVICE_TYPE_DISCRETE_GPU
\tdeviceName        = NVIDIA GeForce RTX 3070

VkPhysicalDeviceMemoryProperties:
=================================
memoryHeaps: count = 2
\tmemoryHeaps[0]:
\t\tsize   = 8589934592 (0x200000000) (8.00 GiB)
\t\tbudget = 7656505344 (0x1c85a0000) (7.13 GiB)
\t\tusage  = 0 (0x00000000) (0.00 B)
\t\tflags: count = 1
\t\t\tMEMORY_HEAP_DEVICE_LOCAL_BIT
\tmemoryHeaps[1]:
\t\tsize   = 16739172352 (0x3e5c0f000) (15.59 GiB)
\t\tbudget = 16739172352 (0x3e5c0f000) (15.59 GiB)
\t\tusage  = 0 (0x00000000) (0.00 B)
\t\tflags:
\t\t\tNone
memoryTypes: count = 5
\tmemoryTypes[0]:
\t\theapIndex     = 1
\t\tpropertyFlags = 0x0000:
\t\t\tNone

GPU1:
VkPhysicalDeviceProperties:
---------------------------
\tapiVersion        = 1.3.255 (4206847)
\tdeviceType        = PHYSICAL_DEVICE_TYPE_CPU
\tdeviceName        = llvmpipe (LLVM 15.0.7, 256 bits)

VkPhysicalDeviceMemoryProperties:
=================================
memoryHeaps: count = 1
\tmemoryHeaps[0]:
\t\tsize   = 33474347008 (0x7cb334000) (31.18 GiB)
\t\tflags: count = 1
\t\t\tMEMORY_HEAP_DEVICE_LOCAL_BIT
"""
MEMINFO = "MemTotal:       32617364 kB\nMemFree:         1234567 kB\nMemAvailable:   20123456 kB\n"


def test_nvidia_smi_csv_with_units_and_without():
    assert parse_nvidia_smi(NVIDIA_CSV) == [
        GpuInfo("NVIDIA GeForce RTX 3090", 24576 * MIB, 23854 * MIB, vendor="nvidia"),
        GpuInfo("Tesla V100-SXM2-16GB", 16160 * MIB, None, vendor="nvidia"),
    ]
    assert parse_nvidia_smi(NVIDIA_BARE) == [
        GpuInfo("NVIDIA GeForce RTX 4060 Laptop GPU", 8188 * MIB, 7948 * MIB, "nvidia")
    ]
    assert parse_nvidia_smi("") == [] and parse_nvidia_smi("No devices were found\n") == []


def test_rocm_smi_json():
    gpus = parse_rocm_smi(ROCM_JSON)
    assert [(g.name, g.vram_total, g.vram_free) for g in gpus] == [
        ("AMD Instinct MI210", 68702699520, 68702699520 - 11124736),
        ("Radeon RX 7900 XTX", 25753026560, 25753026560 - 1000000000),
    ]
    assert parse_rocm_smi("WARNING: No AMD GPUs specified") == []


def test_vulkaninfo_device_local_heaps_without_software_renderers():
    assert parse_vulkaninfo(VULKANINFO) == [GpuInfo("NVIDIA GeForce RTX 3070", 8589934592, 7656505344, "vulkan")]
    assert parse_vulkaninfo("") == []


def test_meminfo_and_cpuinfo():
    assert parse_meminfo(MEMINFO) == (32617364 * 1024, 20123456 * 1024)
    assert parse_cpuinfo("processor\t: 0\nmodel name\t: AMD Ryzen 7 5800X 8-Core Processor\n") == (
        "AMD Ryzen 7 5800X 8-Core Processor"
    )


@pytest.mark.asyncio
async def test_this_machine_without_gpu_tools(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # no nvidia-smi, no rocm-smi, no vulkaninfo
    hardware = await detect_hardware()
    assert hardware.ram_total > 0 and 0 < hardware.ram_available <= hardware.ram_total
    assert hardware.cpu_cores >= 1 and hardware.cpu_name
    assert hardware.gpus == () and hardware.notes == ()


def tool(folder, name: str, script: str) -> None:
    path = folder / name
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


@pytest.mark.asyncio
async def test_installed_tools_are_run_and_a_broken_one_is_a_note(monkeypatch, tmp_path):
    recorded = tmp_path / "nvidia.csv"
    recorded.write_text(NVIDIA_CSV)
    tool(tmp_path, "nvidia-smi", f"cat '{recorded}'\n")
    tool(tmp_path, "rocm-smi", "echo 'ERROR: GPU[0] : Unable to read' >&2\nexit 2\n")
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}/usr/bin:/bin")
    hardware = await detect_hardware()
    assert [gpu.name for gpu in hardware.gpus] == ["NVIDIA GeForce RTX 3090", "Tesla V100-SXM2-16GB"]
    assert hardware.notes == ("rocm-smi is installed but did not answer, so its GPUs are not counted.",)


GEMMA_270M = ModelShape(layers=18, kv_heads=1, key_length=256, value_length=256, context_length=32768)


def test_kv_cache_from_the_header_numbers():
    # 2 (K and V) * 18 layers * 8192 tokens * 1 KV head * 256 wide * 2 bytes (f16)
    assert GEMMA_270M.kv_cache_bytes(8192) == 2 * 18 * 8192 * 256 * 2


def test_verdicts_say_where_it_runs_with_the_numbers():
    gpu = HardwareInfo(32 * GIB, 20 * GIB, "cpu", 8, (GpuInfo("RTX", 8 * GIB, 8 * GIB, "nvidia"),))
    small = estimate_memory(253_113_024, GEMMA_270M, 8192)
    verdict = fit_verdict(small, gpu, 8192)
    assert verdict.fit is Fit.GPU
    assert verdict.text == "Fits on the GPU: 0.9 GB of 8.6 GB VRAM at 8,192 tokens."
    cpu_only = HardwareInfo(32 * GIB, 31 * GIB, "cpu", 8)
    medium = estimate_memory(5_000_000_000, GEMMA_270M, 8192)
    assert fit_verdict(medium, cpu_only, 8192).text == "Runs on the CPU: 5.7 GB of 33.3 GB RAM free at 8,192 tokens."
    huge = estimate_memory(48_000_000_000, GEMMA_270M, 8192)
    too_big = fit_verdict(huge, cpu_only, 8192)
    assert (
        too_big.fit is Fit.TOO_BIG
        and too_big.text == "Too big: needs 48.7 GB at 8,192 tokens, this machine has 34.4 GB."
    )
    # fits in RAM, but not in the RAM free now
    busy = HardwareInfo(32 * GIB, 2 * GIB, "cpu", 8)
    assert fit_verdict(medium, busy, 8192).text.startswith("Too big for now: needs 5.7 GB")
    apple = HardwareInfo(
        16 * GIB, 12 * GIB, "Apple M2", 8, (GpuInfo("Apple GPU", 16 * GIB, None, "apple", unified=True),)
    )
    assert fit_verdict(medium, apple, 8192).text.endswith("unified memory free at 8,192 tokens.")


@pytest.mark.asyncio
async def test_vulkan_counts_when_the_vendors_tools_are_absent(monkeypatch, tmp_path):
    recorded = tmp_path / "vulkaninfo.txt"
    recorded.write_text(VULKANINFO)
    tool(tmp_path, "vulkaninfo", f"cat '{recorded}'\n")
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}/usr/bin:/bin")
    hardware = await detect_hardware()
    assert [(gpu.name, gpu.vendor) for gpu in hardware.gpus] == [("NVIDIA GeForce RTX 3070", "vulkan")]
