"""src/launch/run_msrun.py without a job: the cluster from the environment, this host's addresses
(src/cluster.py), the train.py command (src/launch/processes.py)."""
import sys

import pytest

from src.errors import UserError
from src.cluster import Cluster, is_this_host
from src.launch.processes import ROOT, train_command


def test_defaults_are_one_host_on_the_loopback_with_a_random_port():
    cluster = Cluster.from_env({})
    assert (cluster.nnodes, cluster.node_rank, cluster.master_addr) == (1, 0, "127.0.0.1")
    assert 8118 <= cluster.port < 9118 and cluster.cluster_time_out == 600 and cluster.stop_timeout == 120


def test_several_hosts_use_msruns_default_port():
    assert Cluster.from_env({"NNODES": "2", "NODE_RANK": "1", "MASTER_ADDR": "192.0.2.1"}).port == 8118


@pytest.mark.parametrize("env, message", [
    ({"NNODES": "0"}, "NNODES '0' is not a positive number (the number of hosts)"),
    ({"NNODES": "2", "NODE_RANK": "2"}, "NODE_RANK '2' is not a number from 0 to 1 (NNODES=2): give each host its own"),
    ({"NODE_RANK": "01"}, "NODE_RANK '01' is not a number from 0 to 0"),
    ({"MASTER_ADDR": "no-such-host.invalid"}, "MASTER_ADDR 'no-such-host.invalid' is not an address or a known host"),
    ({"MASTER_ADDR": "192.0.2.77"}, "MASTER_ADDR 192.0.2.77 is not an address of this host, but node 0"),
    ({"MASTER_PORT": "0"}, "MASTER_PORT '0' is not a port number (1-65535)"),
    ({"CLUSTER_TIME_OUT": "-5"}, "CLUSTER_TIME_OUT '-5' is not a positive number of seconds"),
    ({"STOP_TIMEOUT": "1.5"}, "STOP_TIMEOUT '1.5' is not a positive number of seconds"),
])
def test_cluster_environment_errors(env, message):
    with pytest.raises(UserError) as err:
        Cluster.from_env(env)
    assert message in str(err.value)


def test_node_1_may_name_another_host_as_master():
    assert Cluster.from_env({"NNODES": "2", "NODE_RANK": "1", "MASTER_ADDR": "192.0.2.77"}).node_rank == 1


def test_local_addresses():
    assert is_this_host("127.0.0.1") and is_this_host("localhost") and is_this_host("192.0.2.77") is False
    assert is_this_host("no-such-host.invalid") is None


def test_train_command_puts_the_launchers_options_before_the_scripts_arguments():
    """The scripts' arguments (scripts/common.sh's train_args: the seed's fixed ones, then the user's) come last,
    so that a user's --run_distribute=False wins; their order is checked through the script in
    tests/integration/test_distributed.py."""
    assert train_command(["--config_path=c.yaml", "--n_epochs=3"], "--run_distribute=True", "--device_id=1") == [
        sys.executable, str(ROOT / "train.py"), "--run_distribute=True", "--device_id=1", "--config_path=c.yaml",
        "--n_epochs=3"]
