#!/usr/bin/env python3
"""ctest: tools/clip-dask.py on a LocalCluster of two worker processes, one of which is killed
(SIGKILL) while it runs a shard. Every shard must come out exactly once, byte-identical to a
serial clip-embed run. Exits 77 (ctest: skipped) when Dask's distributed is not installed."""

import argparse
import filecmp
import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import threading
import time

SKIP = 77


def make_shards(data_dir, work, shards, per_shard):
    images = sorted(f for f in os.listdir(data_dir) if f.endswith(".png"))
    os.makedirs(os.path.join(work, "shards"))
    for s in range(shards):
        with tarfile.open(os.path.join(work, "shards", "%06d.tar" % s), "w", format=tarfile.GNU_FORMAT) as tar:
            for i in range(per_shard):
                image = images[(s * per_shard + i) % len(images)]
                key = "%06d%04d" % (s, i)
                tar.add(os.path.join(data_dir, image), arcname=key + ".png")
                caption = os.path.join(work, "caption.txt")
                with open(caption, "w") as f:
                    f.write("picture %s of shard %d" % (image, s))
                tar.add(caption, arcname=key + ".txt")
    return os.path.join(work, "shards", "{000000..%06d}.tar" % (shards - 1))


def children_of(pids):
    """PIDs of processes whose parent is in `pids` (Linux /proc)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            if int(fields[1]) in pids:
                found.append(int(entry))
        except (OSError, IndexError, ValueError):
            pass
    return found


def files_under(root):
    return sorted(os.path.relpath(os.path.join(d, f), root) for d, _, fs in os.walk(root) for f in fs)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--clip-embed", required=True)
    parser.add_argument("--driver", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--work", required=True)
    args = parser.parse_args()
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:
        print("python3-distributed is not installed: Dask test skipped")
        return SKIP

    shutil.rmtree(args.work, ignore_errors=True)
    os.makedirs(args.work)
    source = make_shards(args.data, args.work, shards=8, per_shard=60)
    serial = os.path.join(args.work, "serial")
    common = ["--model", args.model, "--input", source, "--threads", "1"]
    run = subprocess.run([args.clip_embed] + common + ["--output-dir", serial], stderr=subprocess.PIPE)
    assert run.returncode == 0, run.stderr.decode()

    spec = importlib.util.spec_from_file_location("clip_dask", args.driver)
    driver = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(driver)

    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
    client = Client(cluster)
    worker_pids = set(client.run(os.getpid).values())
    killed = []

    def kill_a_working_worker():
        deadline = time.time() + 60
        while time.time() < deadline and not killed:
            for pid in list(worker_pids):
                if children_of({pid}):  # this worker is running clip-embed on a shard now
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
                    break
            time.sleep(0.002)

    killer = threading.Thread(target=kill_a_working_worker)
    killer.start()
    distributed_out = os.path.join(args.work, "dask")
    try:
        status = driver.main(["--clip-embed", args.clip_embed, "--model", args.model, "--input", source,
                              "--output-dir", distributed_out, "--scheduler", cluster.scheduler_address,
                              "--threads", "1", "--retries", "3"])
    finally:
        killer.join()
        client.close()
        cluster.close()

    failures = []
    if not killed:
        failures.append("no worker was killed while it worked (the shards ran too fast?)")
    if status != 0:
        failures.append("driver exit status %d" % status)
    want, got = files_under(serial), files_under(distributed_out)
    if want != got:
        failures.append("files differ: serial %s, dask %s" % (want, got))
    else:
        for name in want:
            if not filecmp.cmp(os.path.join(serial, name), os.path.join(distributed_out, name), shallow=False):
                failures.append("%s differs from the serial run" % name)
    expected = ["img_emb/img_emb_%06d.npy" % s for s in range(8)]
    if [f for f in got if f.startswith("img_emb/")] != expected:
        failures.append("img_emb files are not exactly the 8 shards once: %s" % got)
    print("killed worker pid(s) %s mid-shard; %d files compared" % (killed, len(want)))
    for failure in failures:
        print("FAIL: " + failure)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
