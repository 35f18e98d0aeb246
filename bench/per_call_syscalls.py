#!/usr/bin/python3
"""System calls, context switches and CPU imgseld spends per call of one kind.

    bench/per_call_syscalls.py [--build build/default] [--window 2] KIND...

For each KIND (a breakdown kind of plugin_bench, matched as `--kind` matches:
"empty", "padded", "basic view"), runs `plugin_bench --cpu 40000 --rounds 1
--kind KIND` and, while its calls run, counts imgseld's events per thread with
`perf stat --per-thread` over a window of --window seconds. Figures are per
call: the count over the number of calls answered in the window, which is
imgseld's number of sendmsg(2) calls (gRPC writes each unary answer, its
headers, message and status, in one sendmsg; PING acknowledgements and
SETTINGS are the exceptions, a few in thousands of calls, so the figures are
true to the second decimal).

Needs perf (Debian: linux-perf) and the right to trace imgseld (root, or
kernel.perf_event_paranoid <= 1 for one's own processes).
"""
import argparse
import collections
import os
import re
import subprocess
import sys
import tempfile
import time

EVENTS = [
    "context-switches",
    "syscalls:sys_enter_sendmsg",
    "syscalls:sys_enter_recvmsg",
    "syscalls:sys_enter_epoll_wait",
    "syscalls:sys_enter_futex",
    "syscalls:sys_enter_write",
    "syscalls:sys_enter_read",
    "task-clock",
]
CALLS_EVENT = "syscalls:sys_enter_sendmsg"


def short(event):
    return event.split(":")[-1].replace("sys_enter_", "").replace("context-", "")


def measure(bench, kind, window):
    with tempfile.TemporaryDirectory() as tmp:
        out_path = os.path.join(tmp, "bench.txt")
        stat_path = os.path.join(tmp, "perf.txt")
        with open(out_path, "w") as out:
            run = subprocess.Popen(
                [bench, "--cpu", "40000", "--rounds", "1", "--kind", kind],
                stdout=out, stderr=subprocess.STDOUT)
        pid = None
        deadline = time.monotonic() + 120
        while pid is None and time.monotonic() < deadline and run.poll() is None:
            m = re.search(r"imgseld pid (\d+)", open(out_path).read())
            if m:
                pid = m.group(1)
            else:
                time.sleep(0.1)
        if pid is None:
            run.kill()
            run.wait()
            sys.exit(f"plugin_bench did not start imgseld:\n{open(out_path).read()}")
        time.sleep(0.5)  # past the first calls of the kind
        subprocess.run(["perf", "stat", "--per-thread", "-x,", "-o", stat_path,
                        "-e", ",".join(EVENTS), "-p", pid, "--", "sleep", str(window)],
                       check=True)
        run.wait(timeout=600)
        per_thread = collections.defaultdict(collections.Counter)
        for line in open(stat_path):
            fields = line.strip().split(",")
            if len(fields) < 4:
                continue
            try:
                value = float(fields[1])
            except ValueError:
                continue  # <not counted> or <not supported>
            # perf names a thread COMM-TID; threads of one name are summed.
            per_thread[fields[0].rsplit("-", 1)[0]][fields[3]] += value
    total = collections.Counter()
    for counts in per_thread.values():
        total.update(counts)
    calls = total[CALLS_EVENT]
    if calls == 0:
        sys.exit(f"{kind}: no calls answered in the window")
    print(f"{kind}: {calls:.0f} calls in {window} s")
    counted = [e for e in EVENTS if e != "task-clock"]
    header = "".join(f"{short(e):>12}" for e in counted)
    print(f"  {'thread':<18}{header}{'CPU us':>10}")
    rows = sorted(per_thread.items()) + [("all threads", total)]
    for name, counts in rows:
        cpu_us = counts["task-clock"] * 1000 / calls  # task-clock is in ms
        if cpu_us < 0.05:
            continue  # a thread the calls do not touch
        cells = "".join(f"{counts[e] / calls:12.2f}" for e in counted)
        print(f"  {name:<18}{cells}{cpu_us:10.1f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--build", default="build/default")
    parser.add_argument("--window", type=float, default=2.0)
    parser.add_argument("kinds", nargs="+")
    args = parser.parse_args()
    bench = os.path.join(args.build, "bench", "plugin_bench")
    if not os.access(bench, os.X_OK):
        sys.exit(f"{bench}: not built (ninja -C {args.build} plugin_bench)")
    if subprocess.run(["perf", "--version"], capture_output=True).returncode != 0:
        sys.exit("perf is needed (Debian: apt-get install linux-perf)")
    for kind in args.kinds:
        measure(bench, kind, args.window)


if __name__ == "__main__":
    main()
