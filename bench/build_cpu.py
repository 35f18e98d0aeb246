#!/usr/bin/python3
"""CPU time of a clean build, translation unit by translation unit.

Runs every compile command of a configured build tree one after the other,
without ccache and writing to a throwaway object, and records the CPU time
(user + system, from wait4) each took. CPU time, not wall time: it hardly
depends on what else the machine is doing, so a figure taken on a shared
machine still compares with one taken later.

Usage: bench/build_cpu.py BUILD_DIR OUT.tsv [PATH_SUBSTRING]
OUT.tsv: cpu_seconds, wall_seconds, exit status, file; then a TOTAL line.
"""
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    build_dir, out_path = sys.argv[1], sys.argv[2]
    only = sys.argv[3] if len(sys.argv) > 3 else ""
    with open(os.path.join(build_dir, "compile_commands.json")) as f:
        commands = json.load(f)
    scratch = tempfile.NamedTemporaryFile(suffix=".o", delete=False).name
    total = 0.0
    with open(out_path, "w") as out:
        for entry in commands:
            if only and only not in entry["file"]:
                continue
            args = entry.get("arguments") or shlex.split(entry["command"])
            if "ccache" in os.path.basename(args[0]):
                args = args[1:]
            if "-o" in args:
                args[args.index("-o") + 1] = scratch
            start = time.time()
            child = subprocess.Popen(args, cwd=entry["directory"], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
            _, status, usage = os.wait4(child.pid, 0)
            cpu = usage.ru_utime + usage.ru_stime
            total += cpu
            out.write(f"{cpu:.2f}\t{time.time() - start:.2f}\t{status}\t{entry['file']}\n")
            out.flush()
        out.write(f"TOTAL\t{total:.1f}\n")
    os.unlink(scratch)


if __name__ == "__main__":
    main()
