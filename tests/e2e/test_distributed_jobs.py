"""The distributed launchers running real jobs: msrun with 2 CPU workers on one or two "hosts" (two
launchers on this machine), signals that stop every worker, resume after SIGTERM, a dead rank named with its
exit status and log, and the rank-table launcher's real launch path. (Checks before launch are in
tests/integration/test_distributed.py.)"""
import os
import signal
import subprocess
import time

import pytest

from tests.helpers.launchers import (FINAL, LAUNCH_TRAIN_OPTIONS, MSRUN, RANK_TABLE, assert_stops_for_good,
                                     checkpoint_mtimes, job_processes, max_difference, msrun_args,
                                     rank_table_args, read_or_empty, run_launcher, start_launcher, train_processes,
                                     wait_for, worker_pid, write_table)


@pytest.fixture(scope="module")
def one_host(tiny_dataset, tmp_path_factory):
    """One launcher, 2 workers, 4 epochs: the reference run."""
    result = tmp_path_factory.mktemp("one_host") / "result"
    res = run_launcher(MSRUN, 2, *msrun_args(tiny_dataset, result, "--n_epochs=4"))
    return result, res


@pytest.mark.slow
def test_two_process_data_parallel_with_msrun_on_cpu(one_host):
    result, res = one_host
    assert res.returncode == 0, (res.stdout + res.stderr)[-3000:]
    assert (result / FINAL).is_file()
    for rank in (0, 1):
        log = (result / "msrun_logs" / f"worker_{rank}.log").read_text()
        assert "effective batch 8 (4 x 2 rank(s) x 1 accumulation step(s))" in log and "Traceback" not in log
    assert "epoch: 4 step: 3, loss is" in (result / "msrun_logs" / "worker_0.log").read_text()
    assert "epoch: 4 step: 3, loss is" not in (result / "msrun_logs" / "worker_1.log").read_text()  # rank 0 logs
    assert not job_processes(result)


def _ip(*args):
    return subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)


@pytest.fixture
def two_hosts():
    """Two network namespaces joined by a veth pair, as two hosts on one link: 192.0.2.1 and 192.0.2.2
    (TEST-NET-1, never routed). Yields their names; removes them after the test."""
    tag = f"r3d{os.getpid() % 100000}"
    hosts = [(f"{tag}a", f"{tag}va", "192.0.2.1"), (f"{tag}b", f"{tag}vb", "192.0.2.2")]
    setup = [("netns", "add", hosts[0][0]), ("netns", "add", hosts[1][0]),
             ("link", "add", hosts[0][1], "type", "veth", "peer", "name", hosts[1][1])]
    for ns, dev, addr in hosts:
        setup += [("link", "set", dev, "netns", ns), ("-n", ns, "addr", "add", f"{addr}/24", "dev", dev),
                  ("-n", ns, "link", "set", dev, "up"), ("-n", ns, "link", "set", "lo", "up")]
    try:
        for step in setup:
            res = _ip(*step)
            if res.returncode != 0:
                pytest.skip(f"network namespaces cannot be created here: `ip {' '.join(step)}`: {res.stderr.strip()}")
        yield [ns for ns, _, _ in hosts]
    except FileNotFoundError as err:  # no `ip` (iproute2)
        pytest.skip(f"network namespaces cannot be created here: {err}")
    finally:
        for ns, _, _ in hosts:  # removing a namespace removes its end of the veth pair, and so the pair
            _ip("netns", "del", ns)


@pytest.mark.slow
def test_two_hosts_end_bit_identical_to_one_host(one_host, tiny_dataset, tmp_path, two_hosts):
    """NNODES=2 launchers with one worker each, each in a network namespace of its own (two hosts joined
    by a link; msrun as it is: only node 0 owns MASTER_ADDR and runs the scheduler) train the same
    weights as one launcher with two workers."""
    reference, res = one_host
    assert res.returncode == 0, (res.stdout + res.stderr)[-3000:]
    hosts = [start_launcher(MSRUN, 1, *msrun_args(tiny_dataset, tmp_path / f"host{rank}", "--n_epochs=4"),
                            NNODES=2, NODE_RANK=rank, MASTER_ADDR="192.0.2.1", MASTER_PORT=8118, netns=ns)
             for rank, ns in enumerate(two_hosts)]
    outputs = [host.communicate(timeout=300) for host in hosts]
    for host, (out, err) in zip(hosts, outputs):
        assert host.returncode == 0, (out + err)[-3000:]
    assert "node 1 of 2, ranks 1-1" in outputs[1][0]
    assert (tmp_path / "host0" / "msrun_logs" / "scheduler.log").is_file()
    assert not (tmp_path / "host1" / "msrun_logs" / "scheduler.log").exists()  # node 0 alone runs it
    assert (tmp_path / "host1" / "msrun_logs" / "worker_1.log").is_file()
    assert not list((tmp_path / "host1").glob("*.ckpt"))  # only global rank 0 writes checkpoints
    diff, count = max_difference(tmp_path / "host0" / FINAL, reference / FINAL)
    print(f"2 hosts x 1 worker vs 1 host x 2 workers: {count} tensors, max weight difference {diff}")
    assert diff == 0.0


@pytest.mark.slow
@pytest.mark.parametrize("sig, to_group", [(signal.SIGTERM, True), (signal.SIGINT, False)],
                         ids=["SIGTERM-to-group", "SIGINT-to-launcher"])
def test_signal_stops_every_worker(tiny_dataset, tmp_path, sig, to_group):
    """msrun's workers run in sessions of their own: the launcher must reach them (with the signal sent
    to its process group, or to it alone), and nothing may train or write checkpoints afterwards."""
    result = tmp_path / "result"
    proc = start_launcher(MSRUN, 2, *msrun_args(tiny_dataset, result, "--n_epochs=500"))
    wait_for(lambda: checkpoint_mtimes(result) or proc.poll() is not None, 120, "the first checkpoint")
    workers = [worker_pid(result, rank) for rank in (0, 1)]
    assert proc.poll() is None and None not in workers
    if to_group:
        os.killpg(proc.pid, sig)
    else:
        os.kill(proc.pid, sig)
    err = assert_stops_for_good(proc, result, 128 + sig)
    assert f"launcher: {sig.name} received" in err


@pytest.mark.slow
def test_resume_after_sigterm_ends_bit_identical(one_host, tiny_dataset, tmp_path):
    """A job stopped by SIGTERM and resumed with --resume=auto through the launcher ends with the weights
    of the uninterrupted run."""
    reference, res = one_host
    assert res.returncode == 0, (res.stdout + res.stderr)[-3000:]
    result = tmp_path / "result"
    proc = start_launcher(MSRUN, 2, *msrun_args(tiny_dataset, result, "--n_epochs=4"))
    wait_for(lambda: checkpoint_mtimes(result) or proc.poll() is not None, 120, "the first checkpoint", poll=0.1)
    os.killpg(proc.pid, signal.SIGTERM)
    assert_stops_for_good(proc, result, 143)
    assert not (result / FINAL).exists(), "the job ended before the signal: nothing was interrupted"
    res = run_launcher(MSRUN, 2, *msrun_args(tiny_dataset, result, "--n_epochs=4", "--resume=auto"))
    assert res.returncode == 0, (res.stdout + res.stderr)[-3000:]
    diff, count = max_difference(result / FINAL, reference / FINAL)
    print(f"stopped by SIGTERM, resumed vs uninterrupted: {count} tensors, max weight difference {diff}")
    assert diff == 0.0


@pytest.mark.slow
def test_dead_rank_ends_the_job_and_is_named(tiny_dataset, tmp_path):
    result = tmp_path / "result"
    proc = start_launcher(MSRUN, 2, *msrun_args(tiny_dataset, result, "--n_epochs=500"))
    wait_for(lambda: checkpoint_mtimes(result) or proc.poll() is not None, 120, "the first checkpoint")
    victim = worker_pid(result, 1)
    assert proc.poll() is None and victim is not None
    t0 = time.time()
    os.kill(victim, signal.SIGKILL)
    out, err = proc.communicate(timeout=120)
    print(f"dead rank: launcher ended {time.time() - t0:.1f} s after kill -9")
    assert proc.returncode == 1, (out + err)[-3000:]
    log = result / "msrun_logs" / "worker_1.log"
    # the exit status from waitpid (the launcher adopts msrun's workers), not from msrun's log text
    assert err.splitlines()[-1] == f"error: rank 1 (pid {victim}) was killed by SIGKILL; its log: {log}"
    assert "rank 1 | " in err  # the end of its log, before the error
    assert not job_processes(result)


@pytest.mark.slow
def test_rank_table_sigterm_stops_its_ranks(tiny_dataset, tmp_path):
    """The real launch path with one real CPU process (standalone: HCCL needs Ascend): SIGTERM to the
    launcher's group reaches the rank (through the launcher), which had the table's global RANK_ID."""
    table = write_table(tmp_path / "t.json", {"10.0.0.1": [0], "10.0.0.2": [1]})
    result = tmp_path / "result"
    proc = start_launcher(RANK_TABLE, 1, *rank_table_args(table, tiny_dataset, result, *LAUNCH_TRAIN_OPTIONS,
                                                          "--n_epochs=500", "--run_distribute=False"),
                          SERVER_ID="10.0.0.2")
    wait_for(lambda: checkpoint_mtimes(result) or proc.poll() is not None, 120, "the first checkpoint")
    ranks = train_processes(result)
    assert proc.poll() is None and len(ranks) == 1
    rank = ranks[0]
    env = read_or_empty(f"/proc/{rank}/environ").split(b"\0")
    assert b"RANK_ID=1" in env and b"RANK_SIZE=2" in env and b"DEVICE_ID=0" in env
    assert os.getsid(rank) == rank  # not in the launcher's group: reached through the launcher only
    os.killpg(proc.pid, signal.SIGTERM)
    err = assert_stops_for_good(proc, result, 143)
    assert "launcher: SIGTERM received" in err
