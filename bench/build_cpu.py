#!/usr/bin/python3
"""CPU time of a clean build, translation unit by translation unit.

Runs every compile command of a configured build tree one after the other,
without ccache and writing to a throwaway object, and records the CPU time
(user + system, from wait4) each took. CPU time, not wall time: it hardly
depends on what else the machine is doing, so a figure taken on a shared
machine still compares with one taken later.

Usage: bench/build_cpu.py BUILD_DIR OUT.tsv [PATH_SUBSTRING]
OUT.tsv: cpu_seconds, wall_seconds, exit status, file; then a TOTAL line.

With IMGSEL_COMPARE_PCH=1 each unit that uses a precompiled header
(`-include .../cmake_pch.hxx`) is compiled twice, back to back: as it is,
then without the header (every header parsed again); the columns are then
cpu_with, cpu_without, status, file, and the TOTAL line has both sums. The
precompiled headers themselves are counted once, in the first column.
"""
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time


def cpu_of(args, directory):
    """CPU seconds (user + system) of one compile; raises if it fails."""
    child = subprocess.Popen(args, cwd=directory, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    if status != 0:
        raise SystemExit(f"compile failed ({status}): {' '.join(args)}")
    return usage.ru_utime + usage.ru_stime


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    build_dir, out_path = sys.argv[1], sys.argv[2]
    only = sys.argv[3] if len(sys.argv) > 3 else ""
    with open(os.path.join(build_dir, "compile_commands.json")) as f:
        commands = json.load(f)
    scratch = tempfile.NamedTemporaryFile(suffix=".o", delete=False).name
    compare = os.environ.get("IMGSEL_COMPARE_PCH") == "1"
    total = 0.0
    total_without = 0.0
    with open(out_path, "w") as out:
        for entry in commands:
            if only and only not in entry["file"]:
                continue
            args = entry.get("arguments") or shlex.split(entry["command"])
            if "ccache" in os.path.basename(args[0]):
                args = args[1:]
            if "-o" in args:
                args[args.index("-o") + 1] = scratch
            if compare:
                with_pch = cpu_of(args, entry["directory"])
                without = with_pch
                if entry["file"].endswith("cmake_pch.hxx.cxx"):
                    without = 0.0  # a precompiled header is work only the first column does
                elif "-include" in args and args[args.index("-include") + 1].endswith(
                        "cmake_pch.hxx"):
                    i = args.index("-include")
                    plain = [a for a in args[:i] + args[i + 2:] if a != "-Winvalid-pch"]
                    without = cpu_of(plain, entry["directory"])
                total += with_pch
                total_without += without
                out.write(f"{with_pch:.2f}\t{without:.2f}\t0\t{entry['file']}\n")
                out.flush()
                continue
            start = time.time()
            child = subprocess.Popen(args, cwd=entry["directory"], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
            _, status, usage = os.wait4(child.pid, 0)
            cpu = usage.ru_utime + usage.ru_stime
            total += cpu
            out.write(f"{cpu:.2f}\t{time.time() - start:.2f}\t{status}\t{entry['file']}\n")
            out.flush()
        if compare:
            out.write(f"TOTAL\t{total:.1f}\t{total_without:.1f}\n")
        else:
            out.write(f"TOTAL\t{total:.1f}\n")
    os.unlink(scratch)


if __name__ == "__main__":
    main()
