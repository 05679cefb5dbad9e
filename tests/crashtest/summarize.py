#!/usr/bin/env python3
"""Counts for scripts/crashtest.sh.

  summarize.py harvest RUN   counts compactions in the DB's LOG files under
                             RUN/db (every LOG and LOG.old.*), keeping the
                             highest count seen per file in RUN/logcounts.json:
                             the crash test deletes DBs between its runs, so
                             the monitor harvests every few seconds.
  summarize.py report RUN MODES STATUS
                             prints where the compactions ran and the faults.

Where a compaction ran, from three sides:
  - the workers' /metrics (farm_worker_attempts_accepted_total and
    farm_worker_attempts_total by outcome), the last scrape of each worker
    incarnation summed (a restarted worker starts from zero);
  - the db_stress farm client's log, one line per job it handed on: remote
    (installed after verification) or local with the reason;
  - RocksDB's LOG: compaction jobs started ("compaction_started" events) and
    the jobs that received a remote result ("Received remote compaction
    result"); the others ran locally.
"""
import collections
import glob
import json
import os
import re
import sys

STARTED = re.compile(r'"job": (\d+), "event": "compaction_started"')
REMOTE = re.compile(r"\[JOB (\d+)\] Received remote compaction result")


def harvest(run):
    path = os.path.join(run, "logcounts.json")
    counts = {}
    if os.path.exists(path):
        with open(path) as f:
            counts = json.load(f)
    for log in glob.glob(os.path.join(run, "db", "**", "LOG*"), recursive=True):
        try:
            st = os.stat(log)
            with open(log, errors="replace") as f:
                text = f.read()
        except OSError:
            continue
        # The inode and the file's first line (its creation time): a
        # rotated LOG keeps both, a new file with a reused inode does not.
        key = f"{st.st_dev}:{st.st_ino}:{text[:26]}"
        started = set(STARTED.findall(text))
        remote = set(REMOTE.findall(text))
        old = counts.get(key, [0, 0])
        counts[key] = [max(old[0], len(started)), max(old[1], len(remote & started))]
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(counts, f)
    os.replace(tmp, path)


def metric_values(text):
    accepted = 0
    outcomes = collections.Counter()
    rejected = collections.Counter()
    for line in text.splitlines():
        if line.startswith("farm_worker_attempts_accepted_total "):
            accepted += int(float(line.split()[-1]))
        m = re.match(r'farm_worker_attempts_total\{outcome="([^"]+)"\} (\S+)', line)
        if m:
            outcomes[m.group(1)] += int(float(m.group(2)))
        m = re.match(r'farm_worker_rejected_total\{reason="([^"]+)"\} (\S+)', line)
        if m:
            rejected[m.group(1)] += int(float(m.group(2)))
    return accepted, outcomes, rejected


def report(run, modes, status):
    accepted = 0
    outcomes = collections.Counter()
    rejected = collections.Counter()
    for prom in sorted(glob.glob(os.path.join(run, "metrics-*.prom"))):
        with open(prom) as f:
            a, o, r = metric_values(f.read())
        accepted += a
        outcomes += o
        rejected += r
    client = collections.Counter()
    local_reasons = collections.Counter()
    cpath = os.path.join(run, "client.log")
    if os.path.exists(cpath):
        with open(cpath) as f:
            for line in f:
                parts = line.split()
                if len(parts) < 6:
                    continue
                client[parts[4]] += 1
                if parts[4] == "local":
                    local_reasons[parts[5].split(":")[0]] += 1
    started = remote = 0
    lpath = os.path.join(run, "logcounts.json")
    if os.path.exists(lpath):
        with open(lpath) as f:
            for s, r in json.load(f).values():
                started += s
                remote += r
    faults = collections.Counter()
    fpath = os.path.join(run, "faults.log")
    if os.path.exists(fpath):
        with open(fpath) as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 2:
                    faults[parts[1]] += 1
    runs = collections.Counter()
    kills = collections.Counter()
    for path in glob.glob(os.path.join(run, "crashtest-*.log")):
        with open(path, errors="replace") as f:
            text = f.read()
        for m in re.finditer(r"--remote_compaction_worker_threads=(\d+)", text):
            runs["remote on" if int(m.group(1)) > 0 else "remote off"] += 1
        # whitebox: "check_mode=0, kill option=<odds>, exitcode=<code>"
        for m in re.finditer(r"check_mode=(\d), kill option=(\S+), exitcode=(-?\d+)", text):
            if m.group(2) == "None":
                kills["check runs (no kill points)"] += 1
            elif int(m.group(3)) < 0:
                kills["kill-point runs killed at a kill point"] += 1
            else:
                kills["kill-point runs ended without a kill"] += 1
        kills["kill points reached (\"Crashing at\")"] += text.count("Crashing at ")
    verdict = "passed" if status == "0" else "FAILED"
    print(f"\n== crash test ({modes}): {verdict}")
    print("| where | count |")
    print("| --- | --- |")
    print(f"| db_stress runs with remote compaction on | {runs['remote on']} |")
    print(f"| db_stress runs with remote compaction off (by db_crashtest.py) | {runs['remote off']} |")
    for k, v in sorted(kills.items()):
        if v or "whitebox" in modes:
            print(f"| whitebox: {k} | {v} |")
    print(f"| compaction jobs in the DB's LOG (started) | {started} |")
    print(f"| of which received a remote result | {remote} |")
    print(f"| of which ran locally | {started - remote} |")
    print(f"| client: jobs installed from a worker | {client['remote']} |")
    print(f"| client: jobs handed back to RocksDB (local) | {client['local']} |")
    for k, v in sorted(local_reasons.items()):
        print(f"| client: local because {k} | {v} |")
    print(f"| workers: attempts accepted | {accepted} |")
    for k, v in sorted(outcomes.items()):
        if v:
            print(f"| workers: attempts ended {k} | {v} |")
    for k, v in sorted(rejected.items()):
        if v:
            print(f"| workers: submissions rejected {k} | {v} |")
    print(f"| faults injected (total) | {sum(faults.values())} |")
    for k, v in sorted(faults.items()):
        print(f"| fault {k} | {v} |")


def main():
    if sys.argv[1] == "harvest":
        harvest(sys.argv[2])
    elif sys.argv[1] == "report":
        report(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        sys.exit("usage: summarize.py harvest RUN | report RUN MODES STATUS")


if __name__ == "__main__":
    main()
