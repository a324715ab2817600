#!/usr/bin/env bash
# One node of docker/compose.yaml's Slurm test cluster (image target test-cluster), by role:
#   slurmctld   the controller
#   slurmd      the compute node: jobs run as the cluster user with the image's render environment
#               (/opt/semcoat/.venv, the render-node target's)
#   login       the login node the worker reaches over SSH: sshd on port 22 and Slurm's client commands
#
# slurm.conf is the loopback stack's, written by `scripts/stack.sh conf` with the controller and the node named by
# the compose network (SEMCOAT_STACK_CTLD_HOST, SEMCOAT_STACK_NODE, SEMCOAT_STACK_NODE_ADDR). Keys come from secrets
# at start (the munge key every node shares, the login node's host key, the worker's public key); the image holds
# none. munged runs beside the role's daemon, which runs in the foreground (logs on stderr and in
# $SEMCOAT_STACK_DIR/log).
set -euo pipefail

ROLE=${1:-}
case "$ROLE" in
    slurmctld|slurmd|login) ;;
    *) echo "usage: cluster-entrypoint.sh slurmctld|slurmd|login (got '$ROLE')" >&2; exit 2 ;;
esac
SECRETS=${SEMCOAT_STACK_SECRETS:-/run/secrets}
STATE=${SEMCOAT_STACK_DIR:-/var/lib/semcoat-stack}
CLUSTER_USER=${SEMCOAT_CLUSTER_USER:-semcoat-hpc}
NODE=${SEMCOAT_STACK_NODE:-localhost}
STACK=/opt/semcoat/scripts/stack.sh

die() { printf 'cluster-entrypoint (%s): %s\n' "$ROLE" "$*" >&2; exit 1; }
secret() {
    [ -s "$SECRETS/$1" ] || die "the secret $1 is missing or empty ($SECRETS/$1): run docker/make-secrets.sh"
    printf '%s' "$SECRETS/$1"
}

bash "$STACK" conf

# munge: the same key on every node authenticates Slurm's messages
install -o munge -g munge -m 400 "$(secret munge_key)" /etc/munge/munge.key
install -d -o munge -g munge -m 755 /run/munge
runuser -u munge -- /usr/sbin/munged
for _ in $(seq 100); do
    munge -n | unmunge >/dev/null 2>&1 && break
    sleep 0.1
done
munge -n | unmunge >/dev/null 2>&1 || die "munged did not start"

case "$ROLE" in
    slurmctld)
        # the jobcomp log is read over SSH on the login node (a shared volume) by the cluster user
        jobcomp=$STATE/slurm/jobcomp.log
        [ -e "$jobcomp" ] || install -m 644 /dev/null "$jobcomp"
        chmod 644 "$jobcomp"
        exec slurmctld -D
        ;;
    slurmd)
        exec slurmd -D -N "$NODE"
        ;;
    login)
        home=$(getent passwd "$CLUSTER_USER" | cut -d: -f6)
        [ -n "$home" ] || die "no user $CLUSTER_USER in the image"
        install -d -m 755 "$STATE/ssh"
        install -m 600 "$(secret cluster_host_key)" "$STATE/ssh/ssh_host_ed25519_key"
        # the home folder is a volume shared with the compute node (batch folders, logs)
        chown "$CLUSTER_USER:$CLUSTER_USER" "$home" && chmod 755 "$home"
        install -d -m 700 -o "$CLUSTER_USER" -g "$CLUSTER_USER" "$home/.ssh"
        install -m 600 -o "$CLUSTER_USER" -g "$CLUSTER_USER" "$(secret cluster_authorized_key)" \
            "$home/.ssh/authorized_keys"
        # stack.sh's sshd settings, listening on the compose network instead of loopback
        cat >"$STATE/ssh/sshd_config" <<EOF
# Written by docker/cluster-entrypoint.sh
Port 22
ListenAddress 0.0.0.0
HostKey $STATE/ssh/ssh_host_ed25519_key
PidFile /run/sshd.pid
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
PermitRootLogin no
AllowUsers $CLUSTER_USER
AuthorizedKeysFile .ssh/authorized_keys
Subsystem sftp internal-sftp
EOF
        install -d -m 755 /run/sshd
        exec /usr/sbin/sshd -D -e -f "$STATE/ssh/sshd_config"
        ;;
esac
