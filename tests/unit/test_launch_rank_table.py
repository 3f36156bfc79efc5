"""src/cluster.py's rank table (src/launch/run_rank_table.py runs it): this host's devices and global ranks."""
import json

import pytest

from src.errors import UserError
from src.cluster import HostRanks, read_rank_table


def table(tmp_path, servers, **fields):
    """servers: {server_id: [rank_id per device]} -> the path of a version 1.0 rank table."""
    server_list = [{"server_id": sid, "device": [{"device_id": str(i), "device_ip": f"192.168.0.{i + 1}",
                                                  "rank_id": str(r)} for i, r in enumerate(ranks)]}
                   for sid, ranks in servers.items()]
    path = tmp_path / "hccl.json"
    path.write_text(json.dumps({"version": "1.0", "server_count": str(len(servers)), "server_list": server_list,
                                **fields}))
    return path


TWO = {"10.0.0.1": [0, 1], "10.0.0.2": [2, 3]}


def test_the_named_server_gets_its_global_ranks(tmp_path):
    assert read_rank_table(table(tmp_path, TWO), 2, "10.0.0.2") == HostRanks("10.0.0.2", 4, ((0, 2), (1, 3)))


def test_this_host_is_found_by_its_address(tmp_path):
    assert read_rank_table(table(tmp_path, TWO), 2, "", {"myhost", "10.0.0.1"}.__contains__).server_id == "10.0.0.1"
    assert read_rank_table(table(tmp_path, {"10.0.0.1": [0], "127.0.0.1": [1]}), 1).server_id == "127.0.0.1"



@pytest.mark.parametrize("servers, device_num, server_id, addresses, message", [
    (TWO, 2, "", {"10.9.9.9"}, "no server_id of RANK_TABLE_FILE {path} (10.0.0.1, 10.0.0.2) is an address of "
                               "this host: run it on a host of the table, or set SERVER_ID"),
    (TWO, 2, "", {"10.0.0.1", "10.0.0.2"}, "more than one server_id of RANK_TABLE_FILE"),
    (TWO, 2, "10.0.0.3", set(), "SERVER_ID 10.0.0.3 is not a server_id of RANK_TABLE_FILE {path} (10.0.0.1, 10.0.0.2)"),
    (TWO, 4, "10.0.0.1", set(), "DEVICE_NUM 4 does not match the 2 device(s) of server 10.0.0.1 in RANK_TABLE_FILE"),
    ({"10.0.0.1": [0, 1], "10.0.0.2": [1, 2]}, 2, "10.0.0.1", set(), "the rank_ids are not 0 to 3, each once"),
])
def test_wrong_tables_and_hosts_are_named(tmp_path, servers, device_num, server_id, addresses, message):
    path = table(tmp_path, servers)
    with pytest.raises(UserError) as err:
        read_rank_table(path, device_num, server_id, addresses.__contains__)
    assert message.format(path=path) in str(err.value)


@pytest.mark.parametrize("text, message", [
    ('{"server_list": [', "is not an HCCL rank table (server_list / server_id / device / device_id / rank_id): "
                          "JSONDecodeError"),
    ('{"server_list": [{"server_id": "a", "device": [{"device_id": "0"}]}]}', "KeyError: 'rank_id'"),
    ('{"server_list": []}', "lists no servers or a server_id twice"),
    ('{"server_count": "3", "server_list": [{"server_id": "a", "device": []}]}',
     "says server_count 3 but lists 1 servers"),
])
def test_files_that_are_not_rank_tables(tmp_path, text, message):
    path = tmp_path / "t.json"
    path.write_text(text)
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)")):
        read_rank_table(path, 1, "a")


def test_a_missing_file(tmp_path):
    with pytest.raises(UserError, match="is not an HCCL rank table .* FileNotFoundError"):
        read_rank_table(tmp_path / "none.json", 1, "a")
