"""scripts/run_distribute_train.sh's job with an HCCL rank table (src.cluster.read_rank_table): one train.py per
device of this host, each in a session of its own with RANK_TABLE_FILE, RANK_SIZE, RANK_ID and DEVICE_ID set. ``launch([
DEVICE_NUM, RANK_TABLE_FILE, RESULT_PATH, train.py's arguments...], environment)``;
the environment may set SERVER_ID, DRY_RUN=1 and STOP_TIMEOUT."""
import os
import shlex
import sys
from pathlib import Path

from src.cluster import positive_int, read_rank_table
from src.errors import UserError
from src.launch.processes import Ranks, train_command


def launch(argv, env):
    device_num, table_path, result, *train_args = argv
    stop_timeout = positive_int(env, "STOP_TIMEOUT", 120, " of seconds")
    if env.get("DRY_RUN", "0") not in ("0", "1"):
        raise UserError(f"DRY_RUN '{env['DRY_RUN']}' is not 0 or 1")
    host = read_rank_table(table_path, int(device_num), env.get("SERVER_ID", ""))
    print(f"server {host.server_id}: {device_num} device(s), ranks of {host.rank_size} from {table_path}", flush=True)
    with Ranks() as ranks:
        for device, rank in host.devices:
            log = Path(result) / f"rank_{rank}" / "train.log"
            rank_env = {"RANK_TABLE_FILE": table_path, "RANK_SIZE": str(host.rank_size), "RANK_ID": str(rank),
                        "DEVICE_ID": str(device)}
            command = train_command(train_args, "--run_distribute=True", f"--device_id={device}")
            if env.get("DRY_RUN") == "1":
                print(f"rank {rank} (device {device}): {' '.join(f'{k}={v}' for k, v in rank_env.items())} "
                      f"{shlex.join(command)} > {log} 2>&1")
                continue
            if ranks.signum:
                break
            log.parent.mkdir(parents=True, exist_ok=True)
            print(f"starting rank {rank} (device {device}); log: {log}", flush=True)
            with open(log, "wb") as out:  # a session of its own: Ctrl-C reaches the rank through us, once
                pid = os.posix_spawn(sys.executable, command, {**env, **rank_env}, setsid=True, file_actions=[
                    (os.POSIX_SPAWN_DUP2, out.fileno(), 1), (os.POSIX_SPAWN_DUP2, out.fileno(), 2)])
            ranks.add(pid, f"rank {rank}", log)
        return ranks.supervise(stop_timeout, f"{result}/rank_<i>/train.log")
