"""scripts/run_distribute_train.sh's job with an HCCL rank table (version 1.0 layout): one train.py per device of
this host, each in a session of its own with RANK_TABLE_FILE, RANK_SIZE, RANK_ID and DEVICE_ID set. ``launch([
DEVICE_NUM, RANK_TABLE_FILE, DATASET, VIDEO, ANNOTATION, RESULT, --pretrain_path=..., --key=value...], environment)``;
the environment may set SERVER_ID, DRY_RUN=1 and STOP_TIMEOUT."""
import json
import os
import shlex
import sys
from dataclasses import dataclass

from src.errors import UserError
from src.launch.job import Ranks, TrainJob, is_this_host
from src.launch.processes import positive_int


@dataclass(frozen=True)
class HostRanks:
    server_id: str
    rank_size: int  # devices of the whole table
    devices: tuple  # (device_id, rank_id) of each device of this host, in table order


def read_rank_table(path, device_num: int, server_id: str = "", is_mine=is_this_host) -> HostRanks:
    """This host's ranks in the table at ``path``: the server ``server_id``, or else the one server whose
    server_id ``is_mine``. ``device_num`` must be that server's device count."""
    where = f"RANK_TABLE_FILE {path}"
    try:
        with open(path, encoding="utf-8") as f:
            table = json.load(f)
        servers = table["server_list"]
        devices = {str(s["server_id"]): [(int(d["device_id"]), int(d["rank_id"])) for d in s["device"]]
                   for s in servers}
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise UserError(f"{where} is not an HCCL rank table (server_list / server_id / device / device_id / "
                        f"rank_id): {type(err).__name__}: {err}") from None
    if not devices or len(devices) != len(servers):
        raise UserError(f"{where} lists no servers or a server_id twice")
    if "server_count" in table and str(table["server_count"]) != str(len(servers)):
        raise UserError(f"{where} says server_count {table['server_count']} but lists {len(servers)} servers")
    ranks = sorted(rank for devs in devices.values() for _, rank in devs)
    if ranks != list(range(len(ranks))):
        raise UserError(f"{where}: the rank_ids are not 0 to {len(ranks) - 1}, each once")
    names = ", ".join(devices)
    if server_id and server_id not in devices:
        raise UserError(f"SERVER_ID {server_id} is not a server_id of {where} ({names})")
    mine = [server_id] if server_id else [s for s in devices if is_mine(s)]
    if len(mine) != 1:
        raise UserError(f"{'more than one' if mine else 'no'} server_id of {where} ({names}) is an address of this "
                        f"host: run it on a host of the table, or set SERVER_ID")
    if device_num != len(devices[mine[0]]):
        raise UserError(f"DEVICE_NUM {device_num} does not match the {len(devices[mine[0]])} device(s) of "
                        f"server {mine[0]} in {where}")
    return HostRanks(mine[0], len(ranks), tuple(devices[mine[0]]))


def launch(argv, env):
    device_num, table_path, *rest = argv
    job, stop_timeout = TrainJob.from_args(rest), positive_int(env, "STOP_TIMEOUT", 120, " of seconds")
    if env.get("DRY_RUN", "0") not in ("0", "1"):
        raise UserError(f"DRY_RUN '{env['DRY_RUN']}' is not 0 or 1")
    host = read_rank_table(table_path, int(device_num), env.get("SERVER_ID", ""))
    print(f"server {host.server_id}: {device_num} device(s), ranks of {host.rank_size} from {table_path}", flush=True)
    logs = {rank: job.result_path / f"rank_{rank}" / "train.log" for _, rank in host.devices}

    def command(device):
        return job.command("--run_distribute=True", f"--device_id={device}")

    if env.get("DRY_RUN") == "1":
        for device, rank in host.devices:
            print(f"rank {rank} (device {device}): RANK_TABLE_FILE={table_path} RANK_SIZE={host.rank_size} "
                  f"RANK_ID={rank} DEVICE_ID={device} {shlex.join(command(device))} > {logs[rank]} 2>&1")
        return 0
    with Ranks(follow=logs[host.devices[0][1]]) as ranks:
        for device, rank in host.devices:
            if ranks.signum:
                break
            logs[rank].parent.mkdir(parents=True, exist_ok=True)
            print(f"starting rank {rank} (device {device}); log: {logs[rank]}", flush=True)
            rank_env = {**env, "RANK_TABLE_FILE": table_path, "RANK_SIZE": str(host.rank_size),
                        "DEVICE_ID": str(device), "RANK_ID": str(rank)}
            with open(logs[rank], "wb") as out:  # a session of its own: Ctrl-C reaches the rank through us, once
                pid = os.posix_spawn(sys.executable, command(device), rank_env, setsid=True, file_actions=[
                    (os.POSIX_SPAWN_DUP2, out.fileno(), 1), (os.POSIX_SPAWN_DUP2, out.fileno(), 2)])
            ranks.add(pid, f"rank {rank}", logs[rank])
        return ranks.supervise(stop_timeout, f"{job.result_path}/rank_<i>/train.log")
