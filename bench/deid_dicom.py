"""DICOM header de-identification throughput: CareVault vs dicognito vs deid, files per second.

    taskset -c 1 python bench/deid_dicom.py [--runs 5]

The same files for all three, the same machine, one process: the DICOM files of the pydicom
wheel, pydicom-data and deid-data that every tool reads and de-identifies without an error.
Each file is held in memory as bytes; one "file" is, for every tool alike:

    bytes → pydicom.dcmread → de-identify → write the result to a BytesIO

- CareVault: `DicomDeidentifier(key).deidentify(bytes)` (it reads the bytes itself, with the
  same pydicom), Basic Profile from Table E.1-1, keyed UIDs, private tags removed.
- dicognito 0.19: `Anonymizer().anonymize(dataset)` (one Anonymizer for the run, as its CLI).
- deid 0.4.13: `replace_identifiers([dataset], deid=DeidRecipe(), remove_private=True)`, its
  default recipe (`deid.dicom`, built on the basic profile), private tags removed like ours.

Two sets: "released" (the files CareVault releases, so every tool does the whole work on every
file) is the verdict; "all readable" adds the files CareVault quarantines for burned-in
annotation, where it stops early (shown for completeness, not as a fair ratio). Each set runs
--runs times, the tools interleaved and their order rotated per run; figures are medians of
files per second by process CPU time (the verdict: the tools are single-threaded, and CPU time
is not skewed by other work on a shared machine) and by wall time. Setup (loading tables,
recipes) is timed once, apart.
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
import warnings
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pydicom
import pydicom.data
from pydicom import Dataset

Tool = Callable[[bytes], None]


def corpus() -> list[tuple[str, bytes]]:
    import deid_data  # type: ignore[import-untyped]

    paths = [Path(p) for p in pydicom.data.get_testdata_files()]
    paths += sorted((Path(deid_data.__file__).parent / "data").rglob("*.dcm"))
    files = []
    for path in paths:
        if path.is_file():
            data = path.read_bytes()
            if data[128:132] == b"DICM":  # Part 10 files: all three tools read these
                files.append((f"{path.parent.name}/{path.name}", data))
    return files


def _write(ds: Dataset) -> None:
    ds.save_as(io.BytesIO(), enforce_file_format=False)


def carevault_tool() -> tuple[Tool, Callable[[bytes], str]]:
    from carevault.deid.dicom import DicomDeidentifier

    deidentifier = DicomDeidentifier(b"bench-project-key-0123456789abcdef")

    def run(data: bytes) -> None:
        result = deidentifier.deidentify(data)
        if result.dataset is not None:
            _write(result.dataset)

    def outcome(data: bytes) -> str:
        return "quarantined" if deidentifier.deidentify(data).quarantined else "released"

    return run, outcome


def dicognito_tool() -> Tool:
    from dicognito.anonymizer import Anonymizer

    anonymizer = Anonymizer()

    def run(data: bytes) -> None:
        ds = pydicom.dcmread(io.BytesIO(data))
        anonymizer.anonymize(ds)
        _write(ds)

    return run


def deid_tool() -> Tool:
    from deid.config import DeidRecipe
    from deid.dicom import replace_identifiers
    from deid.logger import bot

    bot.level = 0  # its per-file "No deid specification" chatter would dominate the time
    recipe = DeidRecipe()

    def run(data: bytes) -> None:
        ds = pydicom.dcmread(io.BytesIO(data))
        (out,) = replace_identifiers([ds], deid=recipe, save=False, remove_private=True)
        _write(out)

    return run


def _timed(make: Callable[[], object]) -> float:
    started = time.perf_counter()
    make()
    return time.perf_counter() - started


def _works(tool: Tool, data: bytes) -> bool:
    try:
        tool(data)
    except Exception:  # a peer that cannot handle a file: the file leaves the common set
        return False
    return True


def files_per_second(tool: Tool, files: list[bytes]) -> tuple[float, float]:
    """(by CPU time, by wall time): the CPU figure is the verdict on a shared machine, where
    other processes steal wall time from whichever tool happens to run."""
    cpu, wall = time.process_time(), time.perf_counter()
    for data in files:
        tool(data)
    return len(files) / (time.process_time() - cpu), len(files) / (time.perf_counter() - wall)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    warnings.simplefilter("ignore")  # the test files hold deliberately odd values

    setup = {
        "carevault": _timed(carevault_tool),  # the first call loads the tables: the real cost
        "dicognito": _timed(dicognito_tool),
        "deid": _timed(deid_tool),
    }
    ours, outcome = carevault_tool()
    tools: dict[str, Tool] = {"carevault": ours, "dicognito": dicognito_tool(), "deid": deid_tool()}

    candidates = corpus()
    common: list[tuple[str, bytes, str]] = []
    refused: Counter[str] = Counter()
    for name, data in candidates:
        failing = [label for label, tool in tools.items() if not _works(tool, data)]
        if failing:
            for label in failing:
                refused[label] += 1
            continue
        common.append((name, data, outcome(data)))
    released = [data for _name, data, kind in common if kind == "released"]
    readable = [data for _name, data, _kind in common]
    print(f"python {sys.version.split()[0]}, pydicom {pydicom.__version__}")
    print(
        f"{len(candidates)} Part 10 files; {len(readable)} that all three handle "
        f"({len(released)} released by CareVault, {len(readable) - len(released)} "
        f"quarantined); left out, refused or failed by: {dict(refused) or 'none'}"
    )
    print("setup, once per process: " + ", ".join(f"{k} {v:.2f} s" for k, v in setup.items()))

    for label, files in (("released", released), ("all readable", readable)):
        cpu: dict[str, list[float]] = {name: [] for name in tools}
        wall: dict[str, list[float]] = {name: [] for name in tools}
        names = list(tools)
        for run in range(args.runs):
            order = names[run % len(names) :] + names[: run % len(names)]
            for name in order:
                by_cpu, by_wall = files_per_second(tools[name], files)
                cpu[name].append(by_cpu)
                wall[name].append(by_wall)
        median = {name: statistics.median(values) for name, values in cpu.items()}
        median_wall = {name: statistics.median(values) for name, values in wall.items()}
        print(f"\n{label} set: {len(files)} files, median of {args.runs} runs (files/s)")
        print(f"  {'tool':<10} {'CPU time':>9} {'wall':>9}   CPU runs")
        for name in names:
            spread = f"{min(cpu[name]):.0f}-{max(cpu[name]):.0f}"
            print(f"  {name:<10} {median[name]:9.1f} {median_wall[name]:9.1f}   {spread}")
        for peer in ("dicognito", "deid"):
            ratio = median["carevault"] / median[peer]
            ratio_wall = median_wall["carevault"] / median_wall[peer]
            print(f"  carevault / {peer}: {ratio:.2f}x CPU, {ratio_wall:.2f}x wall")


if __name__ == "__main__":
    main()
