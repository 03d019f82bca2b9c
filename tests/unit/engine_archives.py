"""Release tags and archives packed as llama.cpp's release workflow packs build/bin."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

TAG, NEWER = "b9000", "b9100"
# A tiny real CMake project standing in for llama.cpp's source: it builds a `llama-server` that
# answers --version as llama.cpp does (TWIN_BUILD_WAITS in the environment makes configure wait).
CMAKE_LISTS = b"""cmake_minimum_required(VERSION 3.14)
project(llama_twin CXX)
set(CMAKE_RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/bin)
if(DEFINED ENV{TWIN_BUILD_WAITS})
  message(STATUS "configure waits for the test")
  execute_process(COMMAND ${CMAKE_COMMAND} -E sleep 600)
endif()
add_executable(llama-server server.cpp)
"""
SERVER_CPP = b"""#include <cstdio>
#include <cstring>
int main(int argc, char **argv) {
    if (argc > 1 && std::strcmp(argv[1], "--version") == 0) {
        std::printf("version: 9200 (abc1234)\\nbuilt with a C++ compiler for the twin\\n");
        return 0;
    }
    return 1;
}
"""


def tar_archive(path: Path, top: str, files: dict[str, Path | bytes]) -> Path:
    """An archive laid out as llama.cpp's release workflow packs build/bin: `<top>/<file>`."""
    with tarfile.open(path, "w:gz", compresslevel=1) as bundle:
        for name, source in files.items():
            if isinstance(source, Path):
                bundle.add(source, f"{top}/{name}")
            else:
                info = tarfile.TarInfo(f"{top}/{name}")
                info.size = len(source)
                bundle.addfile(info, io.BytesIO(source))
    return path
