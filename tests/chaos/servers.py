"""Private servers for the chaos suite: each on a free port and a directory of its own, so restarting one never
touches the shared test servers (``scripts/servers.sh``), whose binaries it reuses.

Each server says where it is (``url``, the queue backend URL) and can ``restart()`` the way operators do:
Redis and Valkey write an append-only file and shut down cleanly, PostgreSQL restarts in fast mode (also behind a
PgBouncer in transaction pooling mode, which stays up), MariaDB shuts down on SIGTERM. A SQLite "server" is a file,
which never restarts.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

__all__ = ("PrivateServer", "private_server")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait(check: object, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


class PrivateServer:
    """A server the chaos suite owns. ``url`` is ``None`` until started."""

    name = "server"
    restartable = True
    direct_url = ""
    """Behind a pooler: the server's own URL, for the LISTEN connection (``url`` is the pooler's)."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix=f"lq-chaos-{self.name}-", dir="/tmp"))
        self.dir.chmod(0o755)  # the postgres and mysql users traverse it
        self.port = free_port()
        self.url = ""

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def restart(self) -> tuple[float, float]:
        """Stop and start again; return the moments (``time.time()``) the server went down and was back."""
        down = time.time()
        self.stop()
        self.start()
        return down, time.time()

    def destroy(self) -> None:
        try:
            self.stop()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


class RespServer(PrivateServer):
    """Redis or Valkey with an append-only file (``appendfsync everysec``, as in production)."""

    def __init__(self, flavor: str, binary: str) -> None:
        self.name = flavor
        super().__init__()
        self.binary = binary
        self.process: subprocess.Popen[bytes] | None = None
        self.url = f"{flavor}://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        command = [
            self.binary,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "yes",
            "--appendfsync", "everysec",
            "--dir", str(self.dir),
        ]  # fmt: skip
        with (self.dir / "server.log").open("ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        _wait(lambda: _answers(self.port), f"{self.name} on {self.port}")

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)  # a clean shutdown: the append-only file is flushed
            process.wait(60)


class RespClusterServer(PrivateServer):
    """A 3-primary Redis Cluster or Valkey cluster, each node with an append-only file; ``restart()`` stops every
    node cleanly and starts them again (their ``nodes.conf`` brings the cluster back together)."""

    nodes = 3

    def __init__(self, flavor: str, binary: str) -> None:
        self.name = f"{flavor}_cluster"
        super().__init__()
        self.binary = binary
        self.port = _free_port_run(self.nodes)
        self.processes: list[subprocess.Popen[bytes]] = []
        self.url = f"{flavor}+cluster://127.0.0.1:{self.port}"
        self.created = False

    def start(self) -> None:
        for attempt in range(3):
            if self._start_nodes():
                break
            if self.created or attempt == 2:
                logs = f"{self.dir}/n*/server.log"
                raise RuntimeError(f"{self.name}: a node did not start on ports {self.port}+ (see {logs})")
            self.port = _free_port_run(self.nodes)  # another run took a port meanwhile: try other ports
            self.url = self.url.rsplit(":", 1)[0] + f":{self.port}"
        if not self.created:
            addresses = [f"127.0.0.1:{self.port + index}" for index in range(self.nodes)]
            command = ["redis-cli", "--cluster", "create", *addresses, "--cluster-replicas", "0", "--cluster-yes"]
            created = subprocess.run(command, check=False, capture_output=True, text=True)
            if created.returncode:
                raise RuntimeError(f"{self.name}: {' '.join(command)} failed:\n{created.stdout}{created.stderr}")
            self.created = True
        _wait(self._ok, f"{self.name}: cluster_state:ok on every node")

    def _start_nodes(self) -> bool:
        """Start every node and wait until each answers; ``False`` (all stopped) if one of them exited."""
        for index in range(self.nodes):
            port, node = self.port + index, self.dir / f"n{index}"
            node.mkdir(exist_ok=True)
            command = [
                self.binary,
                "--port", str(port),
                "--bind", "127.0.0.1",
                "--save", "",
                "--appendonly", "yes",
                "--appendfsync", "everysec",
                "--cluster-enabled", "yes",
                "--cluster-config-file", str(node / "nodes.conf"),
                "--cluster-node-timeout", "5000",
                "--dir", str(node),
            ]  # fmt: skip
            with (node / "server.log").open("ab") as log:
                self.processes.append(subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT))
        for index, process in enumerate(self.processes):
            port = self.port + index
            _wait(lambda: process.poll() is not None or _answers(port), f"{self.name} node on {port}")  # noqa: B023
        if all(process.poll() is None for process in self.processes):
            return True
        self.stop()
        return False

    def _ok(self) -> bool:
        for index in range(self.nodes):
            command = ["redis-cli", "-p", str(self.port + index), "cluster", "info"]
            info = subprocess.run(command, check=False, capture_output=True, text=True)
            if "cluster_state:ok" not in info.stdout:
                return False
        return True

    def stop(self) -> None:
        processes, self.processes = self.processes, []
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)  # a clean shutdown: the append-only file is flushed
        for process in processes:
            process.wait(60)


def _free_port_run(count: int) -> int:
    """The first of ``count`` free consecutive ports whose cluster bus ports (port + 10000) are free too."""
    # a random start (runs start side by side): two runs pick the same ports only when they pick the same base. The
    # node and bus ports stay below the ephemeral range (32768+ on Linux), where an outgoing connection's local port
    # could take one between this check and the node's bind, or before a restart binds it again.
    for base in random.Random().sample(range(20000, 32768 - 10000 - count, count), 200):
        ports = [base + offset for offset in range(count)]
        if not any(_answers(port) or _answers(port + 10000) for port in ports):
            return base
    raise RuntimeError("no free run of ports for a cluster")


def _as(user: str) -> list[str]:
    return ["runuser", "-u", user, "--"] if os.geteuid() == 0 else []


class PostgresServer(PrivateServer):
    """PostgreSQL from ``LQ_POSTGRES_BIN``; restarted with ``pg_ctl restart -m fast``."""

    name = "postgres"

    def __init__(self, bin_dir: str) -> None:
        super().__init__()
        self.bin_dir = Path(bin_dir)
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
        self._pg("initdb", "-D", str(self.dir / "data"), "-U", "postgres", "--auth=trust", "-E", "UTF8")
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _pg(self, program: str, *args: str) -> None:
        subprocess.run([*_as("postgres"), str(self.bin_dir / program), *args], check=True, capture_output=True)

    def _ctl(self, *args: str) -> None:
        self._pg("pg_ctl", "-D", str(self.dir / "data"), "-l", str(self.dir / "log"), "-w", "-t", "60", *args)

    def start(self) -> None:
        options = f"-p {self.port} -h 127.0.0.1 -k {self.dir} -c fsync=off -c max_connections=200"
        self._ctl("-o", options, "start")

    def stop(self) -> None:
        if (self.dir / "data" / "postmaster.pid").exists():
            self._ctl("-m", "fast", "stop")

    def restart(self) -> tuple[float, float]:
        down = time.time()
        self._ctl("-m", "fast", "restart")
        return down, time.time()


class PgBouncerServer(PostgresServer):
    """PostgreSQL behind a PgBouncer of its own (``LQ_PGBOUNCER_BIN``) in transaction pooling mode; ``restart()``
    restarts the server only, and the bouncer connects again."""

    name = "pgbouncer"

    def __init__(self, bin_dir: str, bouncer: str) -> None:
        super().__init__(bin_dir)
        self.direct_url = self.url
        self.bouncer = bouncer
        self.bouncer_port = free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.bouncer_port}/postgres"
        ini = self.dir / "pgbouncer.ini"
        ini.write_text(
            f"[databases]\n* = host=127.0.0.1 port={self.port}\n[pgbouncer]\nlisten_addr = 127.0.0.1\n"
            f"listen_port = {self.bouncer_port}\nunix_socket_dir =\nauth_type = trust\n"
            f"auth_file = {self.dir / 'userlist.txt'}\npool_mode = transaction\ndefault_pool_size = 40\n"
            "server_login_retry = 1\n"
            f"logfile = {self.dir / 'pgbouncer.log'}\npidfile = {self.dir / 'pgbouncer.pid'}\n"
        )
        (self.dir / "userlist.txt").write_text('"postgres" ""\n')
        if os.geteuid() == 0:
            for path in (ini, self.dir / "userlist.txt"):
                shutil.chown(path, "postgres", "postgres")

    def start(self) -> None:
        super().start()
        if not _answers(self.bouncer_port):
            subprocess.run([*_as("postgres"), self.bouncer, "-d", str(self.dir / "pgbouncer.ini")], check=True)
            _wait(lambda: _answers(self.bouncer_port), f"pgbouncer on {self.bouncer_port}")

    def stop(self) -> None:
        pidfile = self.dir / "pgbouncer.pid"
        if pidfile.exists():
            os.kill(int(pidfile.read_text().split()[0]), signal.SIGTERM)  # an immediate shutdown
            _wait(lambda: not _answers(self.bouncer_port), f"pgbouncer on {self.bouncer_port} to stop")
        super().stop()


class MariaDBServer(PrivateServer):
    """MariaDB (``mariadbd``); stopped with SIGTERM (a clean shutdown) and started on the same data."""

    name = "mariadb"

    def __init__(self) -> None:
        super().__init__()
        self.user = "mysql" if os.geteuid() == 0 else os.environ.get("USER", "")
        if os.geteuid() == 0:
            shutil.chown(self.dir, "mysql", "mysql")
        subprocess.run(
            [
                "mariadb-install-db", "--no-defaults", f"--datadir={self.dir / 'data'}", f"--user={self.user}",
                "--auth-root-authentication-method=normal", "--skip-test-db", "--skip-name-resolve",
            ],
            check=True,
            capture_output=True,
        )  # fmt: skip
        self.process: subprocess.Popen[bytes] | None = None
        self._first = True
        self.url = f"mysql://chaos:chaos@127.0.0.1:{self.port}/chaos"

    def start(self) -> None:
        sock = self.dir / "mysqld.sock"
        command = [
            shutil.which("mariadbd") or "/usr/sbin/mariadbd", "--no-defaults", f"--datadir={self.dir / 'data'}",
            f"--user={self.user}", f"--port={self.port}", "--bind-address=127.0.0.1", f"--socket={sock}",
            f"--pid-file={self.dir / 'mysqld.pid'}", f"--log-error={self.dir / 'error.log'}", "--skip-name-resolve",
            "--skip-log-bin", "--innodb-flush-log-at-trx-commit=2", "--innodb-buffer-pool-size=64M",
            "--max-connections=300", "--character-set-server=utf8mb4", "--collation-server=utf8mb4_unicode_ci",
        ]  # fmt: skip
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait(lambda: _answers(self.port), f"mariadb on {self.port}")
        if self._first:
            self._first = False
            subprocess.run(
                ["mariadb", "--no-defaults", "-uroot", f"--socket={sock}", "-e",
                 "CREATE DATABASE chaos; CREATE USER 'chaos'@'%' IDENTIFIED BY 'chaos'; "
                 "CREATE USER 'chaos'@'localhost' IDENTIFIED BY 'chaos'; GRANT ALL ON *.* TO 'chaos'@'%'; "
                 "GRANT ALL ON *.* TO 'chaos'@'localhost'; FLUSH PRIVILEGES;"],
                check=True,
                capture_output=True,
            )  # fmt: skip

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            process.wait(120)


class SqliteFile(PrivateServer):
    """A SQLite database file that several worker processes share; there is no server to restart."""

    name = "sqlite"
    restartable = False

    def __init__(self) -> None:
        super().__init__()
        self.url = f"sqlite:///{self.dir / 'queue.db'}"

    def start(self) -> None:
        """Nothing to start."""

    def stop(self) -> None:
        """Nothing to stop."""


BACKENDS = ("redis", "valkey", "postgres", "pgbouncer", "sqlite", "mariadb", "redis_cluster", "valkey_cluster")


def private_server(backend: str) -> PrivateServer:
    """A started private server for ``backend`` (one of :data:`BACKENDS`), from the binaries the shared servers use.

    Raises:
        RuntimeError: the binary is unknown (run ``scripts/servers.sh up`` and source its env file).
    """
    needs = {
        "redis": ["LQ_REDIS_BIN"],
        "valkey": ["LQ_VALKEY_BIN"],
        "postgres": ["LQ_POSTGRES_BIN"],
        "pgbouncer": ["LQ_POSTGRES_BIN", "LQ_PGBOUNCER_BIN"],
        "redis_cluster": ["LQ_REDIS_BIN"],
        "valkey_cluster": ["LQ_VALKEY_BIN"],
    }
    for variable in needs.get(backend, []):
        if not os.environ.get(variable):
            raise RuntimeError(f"{variable} is not set: run scripts/servers.sh up and source its env file")
    server: PrivateServer
    if backend in ("redis", "valkey"):
        server = RespServer(backend, os.environ[f"LQ_{backend.upper()}_BIN"])
    elif backend in ("redis_cluster", "valkey_cluster"):
        server = RespClusterServer(backend.removesuffix("_cluster"), os.environ[needs[backend][0]])
    elif backend == "postgres":
        server = PostgresServer(os.environ["LQ_POSTGRES_BIN"])
    elif backend == "pgbouncer":
        server = PgBouncerServer(os.environ["LQ_POSTGRES_BIN"], os.environ["LQ_PGBOUNCER_BIN"])
    elif backend == "mariadb":
        server = MariaDBServer()
    elif backend == "sqlite":
        server = SqliteFile()
    else:
        raise ValueError(f"unknown backend {backend!r}; use one of {', '.join(BACKENDS)}")
    server.start()
    return server
