#!/usr/bin/env python3
"""clip-dask: run clip-embed over many shards on a Dask cluster, one task per shard.

    tools/clip-dask.py --clip-embed build/tools/clip-embed --model M.safetensors \
        --input 'shards/{000000..000123}.tar' --output-dir OUT [--scheduler tcp://HOST:8786]

Without --scheduler a LocalCluster with --workers worker processes is started on this machine.
Each task runs `clip-embed --input SOURCE --output-dir OUT --worker i/N` (N = the number of
shards `clip-embed --list-shards` names, so task i embeds exactly shard i). clip-embed commits a
shard's files atomically (its image .npy last) and skips finished shards, so a task that Dask
retries after losing its worker redoes only an unfinished shard and writes the same bytes.
Every worker must see the same clip-embed, model, input and output paths (a shared file system).

Exit status: 0 every shard done cleanly, 1 some items or shards reported errors (see stderr and
the metadata files), 2 a task failed after its retries or the arguments were wrong.
"""

import argparse
import ctypes
import signal
import subprocess
import sys


def _die_with_parent():
    # The clip-embed child must not outlive a killed Dask worker (Linux: PR_SET_PDEATHSIG), or it
    # would go on writing the shard beside the retry.
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)
    except OSError:
        pass


def embed_shard(command, index, count):
    """One Dask task: clip-embed on shard `index` of `count`. Returns (index, status, stderr)."""
    full = command + ["--worker", "%d/%d" % (index, count)]
    done = subprocess.run(full, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          preexec_fn=_die_with_parent, check=False)
    stderr = done.stderr.decode("utf-8", "replace")
    if done.returncode not in (0, 1):  # 1: some items failed, reported; anything else: retry
        raise RuntimeError("clip-embed exited with %d on shard %d: %s" % (done.returncode, index, stderr.strip()))
    return index, done.returncode, stderr


def list_shards(clip_embed, model, source, shard_size):
    listed = subprocess.run([clip_embed, "--model", model, "--input", source, "--shard-size", str(shard_size),
                             "--list-shards"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False)
    if listed.returncode != 0:
        raise SystemExit("clip-dask: cannot list the shards of %s: %s"
                         % (source, listed.stderr.decode("utf-8", "replace").strip()))
    return listed.stdout.decode("utf-8").split()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clip-embed", default="clip-embed", help="the clip-embed program every worker runs")
    parser.add_argument("--model", required=True)
    parser.add_argument("--input", required=True, help="folder, list file or WebDataset shard pattern")
    parser.add_argument("--output-dir", required=True)
    parser.add_argument("--shard-size", type=int, default=10000)
    parser.add_argument("--scheduler", help="address of a running Dask scheduler (default: a LocalCluster)")
    parser.add_argument("--workers", type=int, default=2, help="LocalCluster worker processes")
    parser.add_argument("--threads", type=int, default=1, help="clip-embed --threads per task")
    parser.add_argument("--retries", type=int, default=3, help="retries of a failed task")
    parser.add_argument("extra", nargs="*", help="more clip-embed arguments (after --)")
    args = parser.parse_args(argv)

    try:
        from dask.distributed import Client, LocalCluster, as_completed
    except ImportError:
        raise SystemExit("clip-dask: needs Dask's distributed scheduler (Debian: python3-distributed)")

    shards = list_shards(args.clip_embed, args.model, args.input, args.shard_size)
    if not shards:
        print("clip-dask: %s has no shards" % args.input, file=sys.stderr)
        return 0
    command = [args.clip_embed, "--model", args.model, "--input", args.input, "--output-dir", args.output_dir,
               "--shard-size", str(args.shard_size), "--threads", str(args.threads)] + args.extra

    cluster = None
    if args.scheduler:
        client = Client(args.scheduler)
    else:
        cluster = LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True,
                               dashboard_address=None)
        client = Client(cluster)
    status = 0
    try:
        futures = [client.submit(embed_shard, command, i, len(shards), key="clip-embed-shard-%s" % name,
                                 retries=args.retries, pure=False)
                   for i, name in enumerate(shards)]
        for future in as_completed(futures):
            try:
                index, code, stderr = future.result()
            except Exception as error:  # retries used up (KilledWorker, clip-embed failing)
                print("clip-dask: %s" % error, file=sys.stderr)
                status = 2
                continue
            if stderr:
                sys.stderr.write(stderr)
            if code == 1:
                status = max(status, 1)
            print("clip-dask: shard %s done" % shards[index], file=sys.stderr)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    return status


if __name__ == "__main__":
    sys.exit(main())
