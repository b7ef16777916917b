"""A real single-node SLURM cluster on this host, for tests: ``slurm_cluster`` fixture.

Debian's ``slurm-wlm`` and ``munge`` (installed by ``.ci/install-slurm.sh``). The fixture
writes, under a temporary folder, a munge key and a ``slurm.conf`` with one node (this
host, CPUs=2, RealMemory from /proc/meminfo less 10 %) and one partition, starts
``munged``, ``slurmctld`` and ``slurmd`` in the foreground as its own child processes
(root, as here), points ``SLURM_CONF`` at the file, waits until ``sinfo`` shows the node
idle and ``srun hostname`` answers, and at teardown cancels every job of the cluster,
waits for them to leave the queue and stops the three daemons (SIGTERM, then SIGKILL).
Accounting (``sacct``) is off: submitit's warnings about it are harmless.

Where the cluster cannot start (SLURM not installed, not root, a daemon that exits, a node
that never becomes idle), the test is skipped with the reason and the daemons' log tails,
never passed silently.

Use it with ``from tests.slurm_cluster import slurm_cluster  # noqa: F401`` in a test
module (no conftest needed), or ``start_cluster`` / ``stop_cluster`` from a script.
"""

from __future__ import annotations

import dataclasses
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

DAEMONS = ("munged", "slurmctld", "slurmd")
CLIENTS = ("sinfo", "squeue", "sbatch", "scancel", "srun")
PARTITION = "debug"


class ClusterUnavailable(RuntimeError):
    """The cluster could not start; the message says why."""


@dataclasses.dataclass
class SlurmCluster:
    root: Path
    conf: Path
    node: str
    partition: str
    processes: dict[str, subprocess.Popen]

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "SLURM_CONF": str(self.conf)}

    def run(self, *cmd: str, timeout: float = 30) -> subprocess.CompletedProcess:
        return subprocess.run(cmd, env=self.env, capture_output=True, text=True, timeout=timeout, check=False)

    def logs(self, lines: int = 8) -> str:
        out = []
        for path in sorted((self.root / "log").glob("*.log")):
            tail = path.read_text(errors="replace").splitlines()[-lines:]
            out.append(f"--- {path.name}\n" + "\n".join(tail))
        return "\n".join(out)


def _free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _real_memory_mb() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(int(line.split()[1]) / 1024 * 0.9)
    raise ClusterUnavailable("no MemTotal in /proc/meminfo")


def slurm_conf(root: Path, host: str, node: str, ports: list[int]) -> str:
    """One controller and one node on this host (loopback), one partition, no accounting, no cgroups."""
    return (
        "\n".join(
            [
                "ClusterName=srhmtest",
                f"SlurmctldHost={host}(127.0.0.1)",
                "SlurmUser=root",
                "SlurmdUser=root",
                f"SlurmctldPort={ports[0]}",
                f"SlurmdPort={ports[1]}",
                "AuthType=auth/munge",
                "CredType=cred/munge",
                f"AuthInfo=socket={root}/run/munge.socket",
                f"StateSaveLocation={root}/state",
                f"SlurmdSpoolDir={root}/spool",
                f"SlurmctldPidFile={root}/run/slurmctld.pid",
                f"SlurmdPidFile={root}/run/slurmd.pid",
                f"SlurmctldLogFile={root}/log/slurmctld.log",
                f"SlurmdLogFile={root}/log/slurmd.log",
                "ProctrackType=proctrack/linuxproc",
                "TaskPlugin=task/none",
                "MpiDefault=none",
                "SelectType=select/cons_tres",
                "SelectTypeParameters=CR_Core",
                "JobAcctGatherType=jobacct_gather/none",
                "AccountingStorageType=accounting_storage/none",
                "JobCompType=jobcomp/none",
                "SchedulerType=sched/backfill",
                "ReturnToService=2",
                "KillWait=2",
                "MinJobAge=30",
                f"NodeName={node} NodeAddr=127.0.0.1 CPUs=2 RealMemory={_real_memory_mb()} State=UNKNOWN",
                f"PartitionName={PARTITION} Nodes={node} Default=YES MaxTime=INFINITE State=UP",
            ]
        )
        + "\n"
    )


def start_cluster(root: Path, timeout: float = 60) -> SlurmCluster:
    """Start munged, slurmctld and slurmd under ``root``; raises ClusterUnavailable with the reason."""
    missing = [cmd for cmd in DAEMONS + CLIENTS if shutil.which(cmd) is None]
    if missing:
        raise ClusterUnavailable(f"SLURM/munge not installed (missing {', '.join(missing)}); run .ci/install-slurm.sh")
    if os.geteuid() != 0:
        raise ClusterUnavailable("the test cluster's daemons run as root, and this process is not root")
    root.mkdir(parents=True, exist_ok=True)
    root.chmod(0o700)
    for sub in ("state", "spool", "log", "run"):
        (root / sub).mkdir(mode=0o700, exist_ok=True)
    key = root / "munge.key"
    key.write_bytes(secrets.token_bytes(1024))
    key.chmod(0o400)
    host = socket.gethostname().split(".")[0]
    conf = root / "slurm.conf"
    conf.write_text(slurm_conf(root, host, host, _free_ports(2)))
    cluster = SlurmCluster(root, conf, host, PARTITION, {})
    commands = {
        "munged": [
            "munged",
            "--foreground",
            "--force",
            f"--socket={root}/run/munge.socket",
            f"--key-file={key}",
            f"--pid-file={root}/run/munged.pid",
            f"--log-file={root}/log/munged.log",
            f"--seed-file={root}/run/munged.seed",
        ],
        "slurmctld": ["slurmctld", "-D", "-i"],
        "slurmd": ["slurmd", "-D", "-N", host],
    }
    try:
        for name, cmd in commands.items():
            log = open(root / "log" / f"{name}.stdout.log", "wb")  # noqa: SIM115 (kept open by the daemon)
            cluster.processes[name] = subprocess.Popen(
                cmd,
                env=cluster.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
            log.close()
            time.sleep(0.5 if name == "munged" else 0)
        _wait_ready(cluster, timeout)
    except BaseException:
        stop_cluster(cluster)
        raise
    return cluster


def _wait_ready(cluster: SlurmCluster, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    state = ""
    while time.monotonic() < deadline:
        dead = [n for n, p in cluster.processes.items() if p.poll() is not None]
        if dead:
            raise ClusterUnavailable(f"{', '.join(dead)} exited at start-up:\n{cluster.logs()}")
        state = cluster.run("sinfo", "--noheader", "--Node", "--format", "%T").stdout.strip()
        if state == "idle":
            hostname = cluster.run("srun", "--time=1", "hostname")
            if hostname.returncode == 0 and hostname.stdout.strip():
                return
            raise ClusterUnavailable(f"srun hostname failed: {hostname.stderr.strip()}\n{cluster.logs()}")
        time.sleep(0.5)
    raise ClusterUnavailable(f"node not idle after {timeout:.0f} s (sinfo says {state!r}):\n{cluster.logs()}")


def stop_cluster(cluster: SlurmCluster, timeout: float = 30) -> None:
    """Cancel every job, wait for the queue to empty, stop the daemons this process started."""
    if cluster.processes.get("slurmctld") is not None and cluster.processes["slurmctld"].poll() is None:
        cluster.run("scancel", "--user", "root")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and cluster.run("squeue", "--noheader").stdout.strip():
            time.sleep(0.5)
    for name in reversed(DAEMONS):
        process = cluster.processes.get(name)
        if process is None or process.poll() is not None:
            continue
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@pytest.fixture(scope="module")
def slurm_cluster(tmp_path_factory):
    """A running single-node cluster; ``SLURM_CONF`` points at it for the module's tests. Skips with the reason."""
    root = Path(tmp_path_factory.mktemp("slurm"))
    try:
        cluster = start_cluster(root)
    except (ClusterUnavailable, OSError, subprocess.SubprocessError) as err:
        pytest.skip(f"no single-node SLURM cluster on this host: {err}")
    old = os.environ.get("SLURM_CONF")
    os.environ["SLURM_CONF"] = str(cluster.conf)
    try:
        yield cluster
    finally:
        if old is None:
            os.environ.pop("SLURM_CONF", None)
        else:
            os.environ["SLURM_CONF"] = old
        stop_cluster(cluster)
