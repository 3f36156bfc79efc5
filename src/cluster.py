"""What the distributed launchers (src/launch/) know of the cluster, apart from running processes: whether a host
name is this host, and this host's ranks in an HCCL rank table."""
import json
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
