"""Write constraints.txt: the exact versions this interpreter has of everything ModelDesk installs.

Walks the requirements of `pyproject.toml` (the runtime ones, the extras named with --extra, and
any further requirement given as an argument, e.g. `pyinstaller==6.22.3`) through the installed
distributions, following each one's own requirements and extras, and pins what it finds. Run it
with the interpreter of an environment where the suite and the benchmarks passed (`make
update-deps` does). Markers are evaluated for this machine: a dependency only another platform
needs is not pinned.

    .venv/bin/python scripts/lock_deps.py --extra test pyinstaller==6.22.3 > constraints.txt
"""

from __future__ import annotations

import argparse
import platform
import sys
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
HEADER = """\
# The tested set: exact versions of everything `make run`, `make test` and `make package` install,
# passed to pip as constraints (pyproject.toml keeps the ranges that PyPI users get).
# Written by `make update-deps` (scripts/lock_deps.py) after the suite and benchmarks passed;
# do not edit by hand. Resolved on {where}.
"""


def _wanted(requirement: Requirement, extras: set[str]) -> bool:
    if requirement.marker is None:
        return True
    return any(requirement.marker.evaluate({"extra": extra}) for extra in extras or {""})


def pins(roots: list[Requirement], project: str) -> dict[str, str]:
    """Canonical name -> installed version for the whole closure of ``roots``."""
    found: dict[str, str] = {}
    done: set[tuple[str, str]] = set()
    todo = [(req, {""}) for req in roots]
    while todo:
        requirement, extras = todo.pop()
        if not _wanted(requirement, extras):
            continue
        name = canonicalize_name(requirement.name)
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            sys.exit(f"{requirement.name} is required but not installed in {sys.prefix}")
        if name != canonicalize_name(project):
            found[name] = dist.version
        for extra in {"", *requirement.extras}:
            if (name, extra) in done:
                continue
            done.add((name, extra))
            for line in dist.requires or ():
                todo.append((Requirement(line), {extra}))
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--extra", action="append", default=[], help="an extra of the project")
    parser.add_argument("more", nargs="*", help="further requirements to pin (e.g. pyinstaller)")
    args = parser.parse_args()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    roots = [Requirement(line) for line in project["dependencies"]]
    for extra in args.extra:
        roots += [Requirement(line) for line in project["optional-dependencies"][extra]]
    roots += [Requirement(line) for line in args.more]
    where = f"Python {platform.python_version()}, {platform.system()} {platform.machine()}"
    sys.stdout.write(HEADER.format(where=where))
    for name, version in sorted(pins(roots, project["name"]).items()):
        sys.stdout.write(f"{name}=={version}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
