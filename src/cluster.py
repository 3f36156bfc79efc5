"""What the distributed launchers (src/launch/) know of the cluster, apart from running processes: whether a host
name is this host, this host's ranks in an HCCL rank table, and the msrun job's hosts from the environment."""
import json
import random
import re
import socket
from dataclasses import dataclass

from src.errors import UserError


def is_this_host(host: str):
    """Whether ``host`` (a name or an address) is this host, in its network namespace: one can bind to its
    address. None if it is neither an address nor a known name."""
    try:
        ip = socket.getaddrinfo(host, None)[0][4][0]
    except (socket.gaierror, UnicodeError):
        return None
    with socket.socket(socket.AF_INET6 if ":" in ip else socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((ip, 0))
        except OSError:  # EADDRNOTAVAIL
            return False
    return True


@dataclass(frozen=True)
class HostRanks:
    server_id: str
    rank_size: int  # devices of the whole table
    devices: tuple  # (device_id, rank_id) of each device of this host, in table order


def read_rank_table(path, device_num: int, server_id: str = "", is_mine=is_this_host) -> HostRanks:
    """This host's ranks in the HCCL rank table (version 1.0 layout) at ``path``: the server ``server_id``, or
    else the one server whose server_id ``is_mine``. ``device_num`` must be that server's device count."""
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


def positive_int(env: dict, name: str, default: int, what: str) -> int:
    value = env.get(name) or str(default)
    if not value.isdigit() or int(value) < 1:
        raise UserError(f"{name} '{value}' is not a positive number{what}")
    return int(value)


@dataclass(frozen=True)
class Cluster:
    nnodes: int
    node_rank: int
    master_addr: str
    port: int
    cluster_time_out: int
    stop_timeout: int

    @classmethod
    def from_env(cls, env):
        nnodes = positive_int(env, "NNODES", 1, " (the number of hosts)")
        node_rank = env.get("NODE_RANK") or "0"
        if not re.fullmatch(r"0|[1-9][0-9]*", node_rank) or int(node_rank) >= nnodes:
            raise UserError(f"NODE_RANK '{node_rank}' is not a number from 0 to {nnodes - 1} (NNODES={nnodes}): "
                            f"give each host its own")
        master = env.get("MASTER_ADDR") or "127.0.0.1"
        if (here := is_this_host(master)) is None:
            raise UserError(f"MASTER_ADDR '{master}' is not an address or a known host name: give node 0's address")
        if int(node_rank) == 0 and not here:
            raise UserError(f"MASTER_ADDR {master} is not an address of this host, but node 0 (NODE_RANK=0) runs "
                            f"msrun's scheduler there: set MASTER_ADDR to this host's address on every node")
        # one host: a random port, so that concurrent jobs do not collide; several: msrun's default, the same on all
        port = env.get("MASTER_PORT") or str(8118 + random.randrange(1000) if nnodes == 1 else 8118)
        if not port.isdigit() or not 1 <= int(port) <= 65535:
            raise UserError(f"MASTER_PORT '{port}' is not a port number (1-65535)")
        return cls(nnodes, int(node_rank), master, int(port),
                   positive_int(env, "CLUSTER_TIME_OUT", 600, " of seconds (how long to wait for all hosts)"),
                   positive_int(env, "STOP_TIMEOUT", 120, " of seconds"))
