"""The distributed launchers: msrun on one or two "hosts" (two launchers on this machine), signals that
stop every worker, a dead rank named with its log, and the rank-table launcher's multi-server table.
The checks before launch; the real 2-worker jobs are in tests/e2e/test_distributed_jobs.py."""
import os
import signal

import pytest

from src.config import REPO_ROOT
from tests.helpers.launchers import (LAUNCH_TRAIN_OPTIONS, MSRUN, RANK_TABLE, msrun_args, rank_table_args,
                                     run_launcher, start_launcher, train_processes, wait_for, write_table)


# --- msrun launcher: environment checks (before anything starts) ---

@pytest.mark.parametrize("env, message", [
    ({"NNODES": "0"}, "NNODES '0' is not a positive number"),
    ({"NNODES": "two"}, "NNODES 'two' is not a positive number"),
    ({"NNODES": "2", "NODE_RANK": "2"}, "NODE_RANK '2' is not a number from 0 to 1 (NNODES=2)"),
    ({"NODE_RANK": "-1"}, "NODE_RANK '-1' is not a number from 0 to 0"),
    ({"MASTER_ADDR": "no-such-host.invalid"}, "MASTER_ADDR 'no-such-host.invalid' is not an address or a known host"),
    ({"MASTER_ADDR": "192.0.2.77"}, "MASTER_ADDR 192.0.2.77 is not an address of this host, but node 0"),
    ({"MASTER_PORT": "70000"}, "MASTER_PORT '70000' is not a port number"),
    ({"MASTER_PORT": "http"}, "MASTER_PORT 'http' is not a port number"),
    ({"CLUSTER_TIME_OUT": "0"}, "CLUSTER_TIME_OUT '0' is not a positive number of seconds"),
    ({"STOP_TIMEOUT": "soon"}, "STOP_TIMEOUT 'soon' is not a positive number of seconds"),
])
def test_msrun_cluster_environment_checks(tiny_dataset, tmp_path, env, message):
    res = run_launcher(MSRUN, 2, *msrun_args(tiny_dataset, tmp_path / "r"), **env)
    errors = [line for line in res.stderr.splitlines() if line.startswith("error: ")]
    assert res.returncode == 1 and len(errors) == 1 and message in errors[0], res.stderr
    assert not (tmp_path / "r").exists()


# --- msrun launcher: real jobs of 2 CPU workers ---

# --- rank-table launcher: a table of two servers ---

@pytest.fixture
def table(tmp_path):
    return write_table(tmp_path / "hccl_2s.json", {"10.0.0.1": [0, 1, 2, 3], "10.0.0.2": [4, 5, 6, 7]})


@pytest.mark.parametrize("device_num, env, message", [
    (4, {}, "no server_id of RANK_TABLE_FILE {table} (10.0.0.1, 10.0.0.2) is an address of this host"),
    (8, {"SERVER_ID": "10.0.0.2"}, "DEVICE_NUM 8 does not match the 4 device(s) of server 10.0.0.2 in RANK_TABLE_FILE"),
    (4, {"SERVER_ID": "10.0.0.3"},
     "SERVER_ID 10.0.0.3 is not a server_id of RANK_TABLE_FILE {table} (10.0.0.1, 10.0.0.2)"),
    (4, {"SERVER_ID": "10.0.0.2", "DRY_RUN": "yes"}, "DRY_RUN 'yes' is not 0 or 1"),
])
def test_rank_table_checks(table, tiny_dataset, tmp_path, device_num, env, message):
    res = run_launcher(RANK_TABLE, device_num, *rank_table_args(table, tiny_dataset, tmp_path / "r"), **env)
    errors = [line for line in res.stderr.splitlines() if line.startswith("error: ")]
    assert res.returncode == 1 and len(errors) == 1 and message.format(table=table) in errors[0], res.stderr
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("servers, message", [
    ('{"server_list": [', "is not an HCCL rank table"),
    ('{"server_count": "2", "server_list": [{"server_id": "10.0.0.1", "device": [{"device_id": "0"}]}]}',
     "is not an HCCL rank table"),
    ({"10.0.0.1": [0, 1], "10.0.0.2": [1, 2]}, "the rank_ids are not 0 to 3, each once"),
])
def test_rank_table_file_checks(tiny_dataset, tmp_path, servers, message):
    path = tmp_path / "t.json"
    if isinstance(servers, str):
        path.write_text(servers)
    else:
        write_table(path, servers)
    res = run_launcher(RANK_TABLE, 2, *rank_table_args(path, tiny_dataset, tmp_path / "r"), SERVER_ID="10.0.0.1")
    assert res.returncode == 1 and res.stderr.startswith("error: ") and message in res.stderr, res.stderr
    assert res.stderr.count("\n") == 1


def test_rank_table_dry_run_gives_global_rank_ids(table, tiny_dataset, tmp_path):
    result = tmp_path / "r"
    res = run_launcher(RANK_TABLE, 4, *rank_table_args(table, tiny_dataset, result, "--n_epochs=3"),
                       SERVER_ID="10.0.0.2", DRY_RUN=1)
    assert res.returncode == 0, res.stderr
    lines = [line for line in res.stdout.splitlines() if line.startswith("rank ")]
    assert len(lines) == 4
    for device, line in enumerate(lines):
        rank = 4 + device
        assert line.startswith(f"rank {rank} (device {device}): RANK_TABLE_FILE={table} RANK_SIZE=8 "
                               f"RANK_ID={rank} DEVICE_ID={device} ")
        assert f" --run_distribute=True --device_id={device} --config_path={REPO_ROOT / 'ucf101_config.yaml'} " \
               f"--dataset=ucf101 --video_path={tiny_dataset['video_path']} --annotation_path=" \
               f"{tiny_dataset['annotation_path']} --result_path={result} --pretrain_path= " in line
        assert line.split(" > ")[0].endswith(" --n_epochs=3")  # the user's options last: they win
        assert line.endswith(f"> {result}/rank_{rank}/train.log 2>&1")
    assert not result.exists()  # a dry run starts and writes nothing


def test_rank_table_finds_this_host_by_its_address(tiny_dataset, tmp_path):
    table = write_table(tmp_path / "t.json", {"10.0.0.1": [0, 1], "127.0.0.1": [2, 3]})
    res = run_launcher(RANK_TABLE, 2, *rank_table_args(table, tiny_dataset, tmp_path / "r"), DRY_RUN=1)
    assert res.returncode == 0, res.stderr
    assert "server 127.0.0.1: 2 device(s), ranks of 4" in res.stdout
    assert "RANK_ID=2 DEVICE_ID=0 " in res.stdout and "RANK_ID=3 DEVICE_ID=1 " in res.stdout


def test_rank_table_dead_rank_is_named(tiny_dataset, tmp_path):
    table = write_table(tmp_path / "t.json", {"10.0.0.1": [0], "10.0.0.2": [1]})
    result = tmp_path / "result"
    proc = start_launcher(RANK_TABLE, 1, *rank_table_args(table, tiny_dataset, result, *LAUNCH_TRAIN_OPTIONS),
                          SERVER_ID="10.0.0.2")
    wait_for(lambda: train_processes(result) or proc.poll() is not None, 30, "the rank")
    victim = train_processes(result)[0]
    os.kill(victim, signal.SIGKILL)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 1, out + err
    assert err.splitlines()[-1] == (f"error: rank 1 (pid {victim}) was killed by SIGKILL; its log: "
                                    f"{result}/rank_1/train.log")
