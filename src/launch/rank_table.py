"""An HCCL rank table (version 1.0 layout): which devices and global ranks belong to this host."""
import json
import socket
import subprocess
from dataclasses import dataclass

from src.launch.processes import LaunchError


@dataclass(frozen=True)
class HostRanks:
    server_id: str
    rank_size: int  # devices of the whole table
    devices: tuple  # (device_id, rank_id) of each device of this host, in table order


def host_addresses() -> set:
    """This host's names and addresses, to find it among a table's server_ids."""
    names = {socket.gethostname(), socket.getfqdn()}
    try:
        out = subprocess.run(["ip", "-o", "addr", "show"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        out = ""
    names.update(line.split()[3].split("/")[0] for line in out.splitlines() if len(line.split()) > 3)
    return {name for name in names if name}


def read_rank_table(path, device_num: int, server_id: str = "", addresses=frozenset()) -> HostRanks:
    """This host's ranks in the table at ``path``: the server ``server_id``, or else the one server whose
    server_id is among ``addresses``. ``device_num`` must be that server's device count."""
    where = f"RANK_TABLE_FILE {path}"
    try:
        with open(path, encoding="utf-8") as f:
            table = json.load(f)
        servers = table["server_list"]
        devices = {str(s["server_id"]): [(int(d["device_id"]), int(d["rank_id"])) for d in s["device"]]
                   for s in servers}
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise LaunchError(f"{where} is not an HCCL rank table (server_list / server_id / device / device_id / "
                          f"rank_id): {type(err).__name__}: {err}") from None
    if not devices or len(devices) != len(servers):
        raise LaunchError(f"{where} lists no servers or a server_id twice")
    if "server_count" in table and str(table["server_count"]) != str(len(servers)):
        raise LaunchError(f"{where} says server_count {table['server_count']} but lists {len(servers)} servers")
    ranks = sorted(rank for devs in devices.values() for _, rank in devs)
    if ranks != list(range(len(ranks))):
        raise LaunchError(f"{where}: the rank_ids are not 0 to {len(ranks) - 1}, each once")
    names = ", ".join(devices)
    if server_id:
        if server_id not in devices:
            raise LaunchError(f"SERVER_ID {server_id} is not a server_id of {where} ({names})")
    else:
        mine = [s for s in devices if s in addresses]
        if len(mine) != 1:
            raise LaunchError(f"{'no' if not mine else 'more than one'} server_id of {where} ({names}) is an "
                              f"address of this host ({', '.join(sorted(addresses))}): run it on a host of the "
                              f"table, or set SERVER_ID")
        server_id = mine[0]
    if device_num != len(devices[server_id]):
        raise LaunchError(f"DEVICE_NUM {device_num} does not match the {len(devices[server_id])} device(s) of "
                          f"server {server_id} in {where}")
    return HostRanks(server_id, len(ranks), tuple(devices[server_id]))
