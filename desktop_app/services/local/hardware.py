"""This machine's RAM, CPU and GPUs, for the Hardware box and the "will it fit" verdicts.

GPUs come from the vendors' tools where they are installed: `nvidia-smi` (NVIDIA), `rocm-smi`
(AMD), else `vulkaninfo` (any GPU with a Vulkan driver: its largest device-local memory heap); on
a Mac with Apple silicon the GPU shares the RAM ("unified memory"). A tool that is
absent is skipped; one that fails or hangs adds a note and never an error: detection always
returns at least the RAM and the CPU. The parsers are pure functions, tested on the tools'
documented output.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import json
import logging
import os
import platform
import re
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path

from desktop_app.domain.hub import GpuInfo, HardwareInfo

log = logging.getLogger(__name__)

TOOL_TIMEOUT_S = 5.0
NVIDIA_QUERY = ("nvidia-smi", "--query-gpu=name,memory.total,memory.free", "--format=csv")
ROCM_QUERY = ("rocm-smi", "--showproductname", "--showmeminfo", "vram", "--json")
VULKAN_QUERY = ("vulkaninfo",)
_MIB = 1024**2
_UNIT = {"kib": 1024, "mib": _MIB, "gib": 1024**3, "b": 1, "kb": 1000, "mb": 10**6, "gb": 10**9}


# --- parsers -------------------------------------------------------------------------------------


def _amount(text: str, default_unit: int) -> int | None:
    """ "16160 MiB" or "16160" (in `default_unit` bytes) as bytes; None for "[N/A]"."""
    match = re.fullmatch(r"\s*([\d.]+)\s*([A-Za-z]*)\s*", text)
    if match is None:
        return None
    unit = _UNIT.get(match[2].lower(), default_unit) if match[2] else default_unit
    return int(float(match[1]) * unit)


def parse_nvidia_smi(output: str) -> list[GpuInfo]:
    """`nvidia-smi --query-gpu=name,memory.total,memory.free --format=csv` (with or without
    `noheader`/`nounits`: unitless numbers are MiB, as nvidia-smi reports memory)."""
    gpus: list[GpuInfo] = []
    for row in csv.reader(io.StringIO(output), skipinitialspace=True):
        if len(row) < 2 or row[0].strip().lower() == "name":
            continue
        total = _amount(row[1], _MIB)
        if total is None:
            continue
        free = _amount(row[2], _MIB) if len(row) > 2 else None
        gpus.append(GpuInfo(row[0].strip(), total, free, vendor="nvidia"))
    return gpus


def parse_rocm_smi(output: str) -> list[GpuInfo]:
    """`rocm-smi --showproductname --showmeminfo vram --json`: one object per "cardN"."""
    try:
        document = json.loads(output)
    except ValueError:
        return []
    if not isinstance(document, dict):
        return []
    gpus: list[GpuInfo] = []
    for card, fields in sorted(document.items()):
        if not card.lower().startswith("card") or not isinstance(fields, dict):
            continue
        lowered = {str(key).lower(): str(value) for key, value in fields.items()}
        total = _amount(lowered.get("vram total memory (b)", ""), 1)
        if not total:
            continue
        used = _amount(lowered.get("vram total used memory (b)", ""), 1)
        name = lowered.get("card series") or lowered.get("card model") or card
        gpus.append(GpuInfo(name.strip(), total, total - used if used is not None else None, vendor="amd"))
    return gpus


_VULKAN_GPU = re.compile(r"^GPU(\d+):\s*$", re.MULTILINE)
_VULKAN_HEAP = re.compile(r"memoryHeaps\[\d+\]:(?P<body>.*?)(?=memoryHeaps\[|memoryTypes|\Z)", re.DOTALL)


def parse_vulkaninfo(output: str) -> list[GpuInfo]:
    """`vulkaninfo` (its full report): per "GPU<n>:" section the device name and type and the
    largest heap flagged MEMORY_HEAP_DEVICE_LOCAL_BIT (its `budget` as the free part). Software
    renderers (deviceType CPU, llvmpipe) are left out; an integrated GPU shares the RAM."""
    gpus: list[GpuInfo] = []
    starts = list(_VULKAN_GPU.finditer(output))
    for number, start in enumerate(starts):
        section = output[start.end() : starts[number + 1].start() if number + 1 < len(starts) else len(output)]
        name = re.search(r"deviceName\s*=\s*(.+)", section)
        kind = re.search(r"deviceType\s*=\s*(\S+)", section)
        if name is None or (kind is not None and kind[1].endswith("_CPU")):
            continue
        heaps = []
        for heap in _VULKAN_HEAP.finditer(section):
            body = heap["body"]
            size = re.search(r"size\s*=\s*(\d+)", body)
            if size is None or "MEMORY_HEAP_DEVICE_LOCAL_BIT" not in body:
                continue
            budget = re.search(r"budget\s*=\s*(\d+)", body)
            heaps.append((int(size[1]), int(budget[1]) if budget else None))
        if not heaps:
            continue
        total, free = max(heaps)
        integrated = kind is not None and kind[1].endswith("INTEGRATED_GPU")
        gpus.append(GpuInfo(name[1].strip(), total, free, vendor="vulkan", unified=integrated))
    return gpus


def parse_meminfo(text: str) -> tuple[int, int] | None:
    """(MemTotal, MemAvailable) in bytes from /proc/meminfo."""
    values: dict[str, int] = {}
    for line in text.splitlines():
        name, _, rest = line.partition(":")
        amount = _amount(rest.replace("kB", "KiB"), 1024)  # /proc says kB and means KiB
        if amount is not None:
            values[name.strip()] = amount
    if "MemTotal" not in values:
        return None
    return values["MemTotal"], values.get("MemAvailable", values.get("MemFree", values["MemTotal"]))


def parse_cpuinfo(text: str) -> str:
    for line in text.splitlines():
        name, _, value = line.partition(":")
        if name.strip() in ("model name", "Hardware", "Processor") and value.strip():
            return value.strip()
    return ""


# --- detection -----------------------------------------------------------------------------------


async def _run(args: tuple[str, ...], environ: Mapping[str, str] | None) -> str | None:
    """The tool's standard output; None when it is not installed. Raises OSError/TimeoutError."""
    path = shutil.which(args[0], path=(environ or os.environ).get("PATH"))
    if path is None:
        return None
    process = await asyncio.create_subprocess_exec(
        path,
        *args[1:],
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        env=dict(environ) if environ is not None else None,
    )
    try:
        out, _ = await asyncio.wait_for(process.communicate(), TOOL_TIMEOUT_S)
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            process.kill()  # only the tool this function started
        await process.wait()
        raise
    if process.returncode != 0:
        raise OSError(f"exit status {process.returncode}")
    return out.decode("utf-8", errors="replace")


def _memory() -> tuple[int, int]:
    meminfo = Path("/proc/meminfo")
    if meminfo.is_file():
        with contextlib.suppress(OSError):
            found = parse_meminfo(meminfo.read_text())
            if found is not None:
                return found
    if sys.platform == "win32":
        return _windows_memory()
    try:
        total = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 0, 0
    try:  # macOS has no "available pages"; free pages understate it, so use it only where present
        available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError):
        available = total
    return total, available


def _windows_memory() -> tuple[int, int]:
    import ctypes

    class MemoryStatus(ctypes.Structure):
        _fields_ = [
            ("length", ctypes.c_ulong),
            ("load", ctypes.c_ulong),
            ("total_phys", ctypes.c_ulonglong),
            ("avail_phys", ctypes.c_ulonglong),
            ("total_page", ctypes.c_ulonglong),
            ("avail_page", ctypes.c_ulonglong),
            ("total_virtual", ctypes.c_ulonglong),
            ("avail_virtual", ctypes.c_ulonglong),
            ("avail_extended", ctypes.c_ulonglong),
        ]

    status = MemoryStatus()
    status.length = ctypes.sizeof(MemoryStatus)
    if not ctypes.windll.kernel32.GlobalMemoryStatusEx(ctypes.byref(status)):  # type: ignore[attr-defined]
        return 0, 0
    return status.total_phys, status.avail_phys


def _cpu_name() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        with contextlib.suppress(OSError):
            name = parse_cpuinfo(cpuinfo.read_text())
            if name:
                return name
    return platform.processor() or platform.machine() or "unknown CPU"


async def detect_hardware(environ: Mapping[str, str] | None = None) -> HardwareInfo:
    """RAM, CPU and GPUs of this machine; never raises for a missing or broken tool."""
    (ram_total, ram_available), cpu_name = await asyncio.to_thread(lambda: (_memory(), _cpu_name()))
    gpus: list[GpuInfo] = []
    notes: list[str] = []
    for query, parse, tool in (
        (NVIDIA_QUERY, parse_nvidia_smi, "nvidia-smi"),
        (ROCM_QUERY, parse_rocm_smi, "rocm-smi"),
    ):
        try:
            output = await _run(query, environ)
        except (OSError, TimeoutError) as exc:
            log.info("%s failed: %s", tool, exc)
            notes.append(f"{tool} is installed but did not answer, so its GPUs are not counted.")
            continue
        if output is not None:
            gpus.extend(parse(output))
    if not gpus and sys.platform != "darwin":  # the vendors' tools count better (a Mac: see below)
        try:
            output = await _run(VULKAN_QUERY, environ)
        except (OSError, TimeoutError) as exc:
            log.info("vulkaninfo failed: %s", exc)
            output = None
        if output is not None:
            gpus.extend(parse_vulkaninfo(output))
    if sys.platform == "darwin" and platform.machine() == "arm64":
        gpus.append(GpuInfo("Apple GPU", ram_total, None, vendor="apple", unified=True))
    return HardwareInfo(ram_total, ram_available, cpu_name, os.cpu_count() or 1, tuple(gpus), tuple(notes))
