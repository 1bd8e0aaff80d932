#!/usr/bin/python3
"""long.py - the long fuzzing runs, outside CI.

    tests/fuzz/long.py [--build build-fuzz] [--hours 1] [--work var/fuzz] TARGET...

Runs each named target (fuzz_TARGET in BUILD/tests/fuzz) until it has used
HOURS of CPU time, in chunks of at most ten minutes so that the count is CPU
time, not wall time: on a busy machine, or under nice, a wall-clock hour would
be less fuzzing than it says. The corpus lives in WORK/corpus/TARGET and
survives between runs; a target that already has its hours in WORK/hours.tsv
is skipped. The CPU time used so far is kept in WORK/progress/TARGET after
every chunk, so a run that is stopped (a session's end, a reboot) goes on
from there instead of starting its hour again. At the end the inputs that add coverage are merged into the
checked-in seeds (tests/fuzz/seeds/TARGET) with libFuzzer's -merge=1, which
keeps only what is new: that is the corpus CI starts from.

A crash stops the target: its artifact stays in WORK/crash/TARGET and the
line in hours.tsv says "crash".
"""

import argparse
import os
import re
import resource
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
CHUNK = 600


def cpu_children():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def done_targets(path):
    done = {}
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                parts = line.rstrip("\n").split("\t")
                if len(parts) >= 5 and parts[0] != "target":
                    done[parts[0]] = parts
    return done


def load_progress(path):
    """Return (cpu_s, wall_s) already spent on a target, or (0, 0)."""
    try:
        with open(path) as f:
            cpu, wall = f.read().split()[:2]
            return float(cpu), float(wall)
    except (OSError, ValueError):
        return 0.0, 0.0


def save_progress(path, cpu, wall):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write("%.0f %.0f\n" % (cpu, wall))
    os.replace(tmp, path)


def logged_inputs(log):
    """Inputs run by every chunk so far, from libFuzzer's final stats."""
    try:
        with open(log) as f:
            runs = re.findall(r"stat::number_of_executed_units:\s+(\d+)", f.read())
    except OSError:
        return 0
    return sum(int(n) for n in runs)


def run(args, name, hours_file):
    binary = os.path.join(args.build, "tests", "fuzz", "fuzz_" + name)
    seeds = os.path.join(HERE, "seeds", name)
    corpus = os.path.join(args.work, "corpus", name)
    crash = os.path.join(args.work, "crash", name) + "/"
    os.makedirs(corpus, exist_ok=True)
    os.makedirs(crash, exist_ok=True)
    progress = os.path.join(args.work, "progress", name)
    os.makedirs(os.path.dirname(progress), exist_ok=True)
    goal = args.hours * 3600
    used, wall_before = load_progress(progress)
    execs = 0
    wall0 = time.time()
    result = "ok"
    log = os.path.join(args.work, name + ".log")
    while used < goal:
        chunk = int(min(CHUNK, goal - used)) + 1
        before = cpu_children()
        with open(log, "a") as out:
            rc = subprocess.call(
                [binary, "-max_len=4096", "-max_total_time=%d" % chunk,
                 "-print_final_stats=1", "-artifact_prefix=" + crash, corpus, seeds],
                stdout=out, stderr=subprocess.STDOUT)
        used += cpu_children() - before
        save_progress(progress, used, wall_before + time.time() - wall0)
        execs = logged_inputs(log)
        print("fuzz_%s: %.0f of %d CPU s, %d inputs" % (name, used, goal, execs),
              flush=True)
        if rc != 0:
            result = "crash"
            break
    wall = wall_before + time.time() - wall0
    execs = logged_inputs(log)
    if result == "ok":
        # Only inputs that add coverage to the seeds are copied into them.
        subprocess.call([binary, "-merge=1", "-max_len=4096", seeds, corpus],
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with open(hours_file, "a") as f:
        f.write("%s\t%.0f\t%.0f\t%d\t%s\t%d\n" % (
            name, used, wall, execs, result, len(os.listdir(seeds))))
    return result == "ok"


def main():
    p = argparse.ArgumentParser(description="long fuzzing runs (outside CI)")
    p.add_argument("--build", default="build-fuzz")
    p.add_argument("--hours", type=float, default=1.0)
    p.add_argument("--work", default="var/fuzz")
    p.add_argument("targets", nargs="+")
    args = p.parse_args()
    os.makedirs(args.work, exist_ok=True)
    hours_file = os.path.join(args.work, "hours.tsv")
    if not os.path.exists(hours_file):
        with open(hours_file, "w") as f:
            f.write("target\tcpu_s\twall_s\tinputs\tresult\tseeds\n")
    ok = True
    for name in args.targets:
        if name in done_targets(hours_file):
            print("fuzz_%s: already run (%s)" % (name, hours_file))
            continue
        ok = run(args, name, hours_file) and ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
