#!/usr/bin/env bash
# The real stack on loopback for development and tests: Redis, munge, a one-node Slurm cluster (slurmctld + slurmd)
# and an OpenSSH server with its own host key, a client key, a known_hosts file and an unprivileged cluster user that
# jobs run as. Everything binds to 127.0.0.1; nothing leaves this machine.
#
#   scripts/stack.sh install   apt-install the daemons (idempotent; writes /etc/slurm/slurm.conf first) and the
#                              cluster's environment (semcoat[render,train] in $SEMCOAT_CLUSTER_RENDER_ENV)
#   scripts/stack.sh up        start what is not running, wait until each part answers (idempotent)
#   scripts/stack.sh down      cancel jobs, stop every daemon by its PID file
#   scripts/stack.sh status    one line per part; exit 0 only when all are up
#   scripts/stack.sh env       print the settings file clients read (SEMCOAT_* variables)
#   scripts/stack.sh conf      write slurm.conf only; SEMCOAT_STACK_CTLD_HOST, SEMCOAT_STACK_NODE and
#                              SEMCOAT_STACK_NODE_ADDR name the controller and the node for a cluster of containers
#                              (docker/compose.yaml), SEMCOAT_STACK_SLURM_CONF where it goes (tests)
#   scripts/stack.sh packages  slurm.conf, then the Debian packages only (an image build: no key, user or daemon)
#
# State (keys, PID files, logs, Slurm state) lives in $SEMCOAT_STACK_DIR (default /var/lib/semcoat-stack).
# Needs root (it installs packages, creates a user and starts daemons).
set -euo pipefail

STATE=${SEMCOAT_STACK_DIR:-/var/lib/semcoat-stack}
SSH_PORT=${SEMCOAT_SSH_PORT:-2222}
REDIS_PORT=${SEMCOAT_REDIS_PORT:-6390}
CLUSTER_USER=${SEMCOAT_CLUSTER_USER:-semcoat-hpc}
SLURM_CONF=${SEMCOAT_STACK_SLURM_CONF:-/etc/slurm/slurm.conf}
CTLD_HOST=${SEMCOAT_STACK_CTLD_HOST:-localhost(127.0.0.1)}
NODE_NAME=${SEMCOAT_STACK_NODE:-localhost}
NODE_ADDR=${SEMCOAT_STACK_NODE_ADDR:-127.0.0.1}
READY_TIMEOUT_S=${SEMCOAT_STACK_TIMEOUT_S:-30}
RENDER_ENV=${SEMCOAT_CLUSTER_RENDER_ENV:-/opt/semcoat-cluster}
PACKAGES=(slurmctld slurmd slurm-client munge openssh-server openssh-client redis-server redis-tools procps
          python3.11 python3.11-venv)

log() { printf 'stack: %s\n' "$*" >&2; }
die() { printf 'stack: error: %s\n' "$*" >&2; exit 1; }

need_root() { [ "$(id -u)" = 0 ] || die "run as root (it installs packages, adds a user and starts daemons)"; }

# A PID is alive when the process exists and is not a zombie (PID 1 here reaps late).
pid_alive() {
    local pid=$1 stat
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
    stat=$(ps -o stat= -p "$pid" 2>/dev/null || true)
    [ -n "$stat" ] && [ "${stat#Z}" = "$stat" ]
}

pidfile_alive() { [ -f "$1" ] && pid_alive "$(cat "$1" 2>/dev/null)"; }

# wait_for DESCRIPTION COMMAND...: retry COMMAND until it succeeds or READY_TIMEOUT_S passes.
wait_for() {
    local what=$1; shift
    local deadline=$((SECONDS + READY_TIMEOUT_S))
    until "$@" >/dev/null 2>&1; do
        [ $SECONDS -lt $deadline ] || die "$what did not become ready within ${READY_TIMEOUT_S}s (logs: $STATE/log)"
        sleep 0.1
    done
}

write_slurm_conf() {
    # Written before any Slurm command or package runs: without it Slurm clients look the controller up in DNS.
    local cpus mem_mb
    cpus=$(nproc)
    mem_mb=$(awk '/MemTotal/ {printf "%d", $2 / 1024 * 0.8}' /proc/meminfo)
    mkdir -p "$(dirname "$SLURM_CONF")" "$STATE"/{slurm/ctld,slurm/d,run,log}
    chmod 755 "$STATE" "$STATE/slurm"
    cat >"$SLURM_CONF.tmp" <<EOF
# Written by semcoat scripts/stack.sh: a one-node cluster on loopback.
ClusterName=semcoat
SlurmctldHost=$CTLD_HOST
SlurmctldPort=6817
SlurmdPort=6818
CommunicationParameters=NoCtldInAddrAny,NoInAddrAny
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$STATE/slurm/ctld
SlurmdSpoolDir=$STATE/slurm/d
SlurmctldPidFile=$STATE/run/slurmctld.pid
SlurmdPidFile=$STATE/run/slurmd.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
MailProg=/bin/true
MpiDefault=none
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/filetxt
JobCompLoc=$STATE/slurm/jobcomp.log
SchedulerParameters=batch_sched_delay=0,sched_min_interval=0,bf_interval=1
ReturnToService=2
InactiveLimit=0
KillWait=5
MinJobAge=300
NodeName=$NODE_NAME NodeAddr=$NODE_ADDR CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN
PartitionName=debug Nodes=$NODE_NAME Default=YES MaxTime=INFINITE State=UP
EOF
    mv "$SLURM_CONF.tmp" "$SLURM_CONF"
    chmod 644 "$SLURM_CONF"
}

install_packages() {
    local missing=()
    for p in "${PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        log "installing ${missing[*]}"
        # Keep package scripts from starting daemons on their default (non-loopback) settings.
        local made_policy=0
        if [ ! -e /usr/sbin/policy-rc.d ]; then
            printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d && made_policy=1
        fi
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
        [ $made_policy = 1 ] && rm -f /usr/sbin/policy-rc.d
    fi
}

cmd_install() {
    need_root
    write_slurm_conf
    install_packages
    # munge key (the package creates one on most systems; make sure)
    if [ ! -s /etc/munge/munge.key ]; then
        mkdir -p /etc/munge
        dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key status=none
    fi
    chown munge:munge /etc/munge/munge.key && chmod 400 /etc/munge/munge.key
    # the unprivileged cluster user that jobs run as
    if ! id "$CLUSTER_USER" >/dev/null 2>&1; then
        useradd --create-home --shell /bin/bash "$CLUSTER_USER"
    fi
    usermod -p '*' "$CLUSTER_USER"   # a locked ('!') account is refused by sshd even with a key
    # ssh keys: host key, client key, authorized_keys, known_hosts
    install -d -m 755 "$STATE/ssh"
    [ -f "$STATE/ssh/ssh_host_ed25519_key" ] || ssh-keygen -q -t ed25519 -N '' -C semcoat-stack-host -f "$STATE/ssh/ssh_host_ed25519_key"
    [ -f "$STATE/ssh/client_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C semcoat-stack-client -f "$STATE/ssh/client_ed25519"
    chmod 600 "$STATE/ssh/ssh_host_ed25519_key" "$STATE/ssh/client_ed25519"
    local home
    home=$(getent passwd "$CLUSTER_USER" | cut -d: -f6)
    install -d -m 700 -o "$CLUSTER_USER" -g "$CLUSTER_USER" "$home/.ssh"
    install -m 600 -o "$CLUSTER_USER" -g "$CLUSTER_USER" "$STATE/ssh/client_ed25519.pub" "$home/.ssh/authorized_keys"
    printf '[127.0.0.1]:%s %s\n' "$SSH_PORT" "$(cut -d' ' -f1,2 "$STATE/ssh/ssh_host_ed25519_key.pub")" >"$STATE/ssh/known_hosts"
    cat >"$STATE/ssh/sshd_config" <<EOF
# Written by semcoat scripts/stack.sh
Port $SSH_PORT
ListenAddress 127.0.0.1
HostKey $STATE/ssh/ssh_host_ed25519_key
PidFile $STATE/run/sshd.pid
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
PermitRootLogin no
AllowUsers $CLUSTER_USER
StrictModes no
AuthorizedKeysFile .ssh/authorized_keys
Subsystem sftp internal-sftp
EOF
    # the software jobs run: this checkout's semcoat with the render and train extras, on Debian's Python 3.11 (the
    # project's own .venv may sit on an interpreter the cluster user cannot reach, as a login node's software would not)
    bash "$(dirname "$0")/install-render-env.sh" "$RENDER_ENV" --python /usr/bin/python3.11 --extras render,train
    write_env
    log "installed; state in $STATE"
}

write_env() {
    local home
    home=$(getent passwd "$CLUSTER_USER" | cut -d: -f6)
    cat >"$STATE/stack.env" <<EOF
SEMCOAT_REDIS_URL=redis://127.0.0.1:$REDIS_PORT/0
SEMCOAT_SSH_HOST=127.0.0.1
SEMCOAT_SSH_PORT=$SSH_PORT
SEMCOAT_SSH_USER=$CLUSTER_USER
SEMCOAT_SSH_KEY=$STATE/ssh/client_ed25519
SEMCOAT_SSH_KNOWN_HOSTS=$STATE/ssh/known_hosts
SEMCOAT_SLURM_JOBCOMP_LOG=$STATE/slurm/jobcomp.log
SEMCOAT_CLUSTER_HOME=$home
SEMCOAT_CLUSTER_SEMCOAT=$RENDER_ENV/bin/semcoat
EOF
}

munge_ok() { munge -n | unmunge; }
node_idle() { case "$(sinfo -h -n "$NODE_NAME" -o %t 2>/dev/null)" in idle|mix|alloc|comp) return 0 ;; *) return 1 ;; esac; }
redis_ok() { [ "$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null)" = PONG ]; }
ssh_ok() {
    ssh -q -p "$SSH_PORT" -i "$STATE/ssh/client_ed25519" -o BatchMode=yes -o ConnectTimeout=2 \
        -o UserKnownHostsFile="$STATE/ssh/known_hosts" -o StrictHostKeyChecking=yes "$CLUSTER_USER@127.0.0.1" true
}

cmd_up() {
    need_root
    [ -f "$STATE/stack.env" ] && command -v slurmctld >/dev/null || die "not installed: run scripts/stack.sh install first"
    write_slurm_conf
    # munge
    install -d -o munge -g munge -m 755 /run/munge
    if ! munge_ok >/dev/null 2>&1; then
        runuser -u munge -- /usr/sbin/munged
        wait_for munge munge_ok
    fi
    # slurmctld, then slurmd (registers the node)
    if ! pidfile_alive "$STATE/run/slurmctld.pid"; then
        slurmctld
        wait_for slurmctld scontrol ping
    fi
    if ! pidfile_alive "$STATE/run/slurmd.pid"; then
        slurmd -N "$NODE_NAME"
    fi
    wait_for "slurmd (node idle)" node_idle
    chmod 644 "$STATE/slurm/jobcomp.log" 2>/dev/null || true
    # sshd
    mkdir -p /run/sshd && chmod 755 /run/sshd
    if ! pidfile_alive "$STATE/run/sshd.pid"; then
        /usr/sbin/sshd -f "$STATE/ssh/sshd_config" -E "$STATE/log/sshd.log"
    fi
    wait_for sshd ssh_ok
    # redis
    if ! redis_ok; then
        mkdir -p "$STATE/redis"
        redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save '' --appendonly no --daemonize yes \
            --dir "$STATE/redis" --pidfile "$STATE/run/redis.pid" --logfile "$STATE/log/redis.log"
        wait_for redis redis_ok
    fi
    write_env
    log "up: munge, slurmctld, slurmd, sshd (127.0.0.1:$SSH_PORT), redis (127.0.0.1:$REDIS_PORT); settings in $STATE/stack.env"
}

stop_pidfile() {
    local name=$1 file=$2 pid
    pidfile_alive "$file" || { rm -f "$file"; return 0; }
    pid=$(cat "$file")
    kill "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + 10))
    while pid_alive "$pid"; do
        if [ $SECONDS -ge $deadline ]; then kill -9 "$pid" 2>/dev/null || true; break; fi
        sleep 0.1
    done
    rm -f "$file"
    log "stopped $name"
}

cmd_down() {
    need_root
    if pidfile_alive "$STATE/run/slurmctld.pid"; then
        scancel --quiet --full --state=RUNNING,PENDING,SUSPENDED --partition=debug 2>/dev/null || true
        local deadline=$((SECONDS + 10))
        while pgrep -x slurmstepd >/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.2; done
    fi
    stop_pidfile slurmd "$STATE/run/slurmd.pid"
    stop_pidfile slurmctld "$STATE/run/slurmctld.pid"
    stop_pidfile sshd "$STATE/run/sshd.pid"
    stop_pidfile redis "$STATE/run/redis.pid"
    stop_pidfile munged /run/munge/munged.pid
}

cmd_status() {
    local all=0
    report() { if "$@" >/dev/null 2>&1; then printf '%-10s up\n' "$part"; else printf '%-10s down\n' "$part"; all=1; fi; }
    part=munge; report munge_ok
    part=slurmctld; report scontrol ping
    part=slurmd; report node_idle
    part=sshd; report ssh_ok
    part=redis; report redis_ok
    return $all
}

case "${1:-}" in
    install) cmd_install ;;
    up) cmd_up ;;
    down) cmd_down ;;
    status) cmd_status ;;
    env) cat "$STATE/stack.env" ;;
    conf) need_root; write_slurm_conf ;;
    packages) need_root; write_slurm_conf; install_packages ;;
    *) echo "usage: $0 install|up|down|status|env|conf|packages" >&2; exit 2 ;;
esac
