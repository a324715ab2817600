#!/usr/bin/env bash
# The secrets docker/compose.yaml reads, made once into docker/secrets/ (or DIR), never into an image:
#
#   bash docker/make-secrets.sh [DIR]
#
#   ssh_key, ssh_key.pub       the worker's SSH key pair (ed25519, no passphrase); the public half is what the
#                              cluster account must accept (~/.ssh/authorized_keys; the test cluster's login node
#                              installs it itself)
#   known_hosts                the login node's host key, as the worker checks it: the test cluster's `login`;
#                              for a real cluster replace it with its login node's line (ssh-keyscan -p PORT HOST,
#                              fingerprint checked with the cluster's admins)
#   ssh_host_ed25519_key       the test cluster's login node host key
#   munge.key                  the test cluster's munge key (1024 random bytes)
#
# Files that exist are kept (run it again safely). The worker runs as uid 10001 and must read ssh_key: as root this
# script gives it to that uid; otherwise it says what to run.
set -euo pipefail

DIR=${1:-"$(cd "$(dirname "$0")" && pwd)/secrets"}
WORKER_UID=10001
LOGIN_HOST=login

log() { printf 'make-secrets: %s\n' "$*" >&2; }

install -d -m 700 "$DIR"
umask 077
if [ ! -s "$DIR/ssh_key" ]; then
    rm -f "$DIR/ssh_key" "$DIR/ssh_key.pub"
    ssh-keygen -q -t ed25519 -N '' -C semcoat-worker -f "$DIR/ssh_key"
    log "made the worker's key $DIR/ssh_key"
fi
if [ ! -s "$DIR/ssh_host_ed25519_key" ]; then
    rm -f "$DIR/ssh_host_ed25519_key" "$DIR/ssh_host_ed25519_key.pub"
    ssh-keygen -q -t ed25519 -N '' -C semcoat-test-cluster-login -f "$DIR/ssh_host_ed25519_key"
    log "made the test cluster's host key $DIR/ssh_host_ed25519_key"
fi
if [ ! -s "$DIR/known_hosts" ]; then
    # port 22 inside the compose network: OpenSSH and paramiko look the plain host name up
    printf '%s %s\n' "$LOGIN_HOST" "$(cut -d' ' -f1,2 "$DIR/ssh_host_ed25519_key.pub")" >"$DIR/known_hosts"
    log "wrote $DIR/known_hosts (the test cluster's login node)"
fi
if [ ! -s "$DIR/munge.key" ]; then
    dd if=/dev/urandom of="$DIR/munge.key" bs=1024 count=1 status=none
    log "made the test cluster's munge key $DIR/munge.key"
fi
chmod 600 "$DIR/ssh_key" "$DIR/ssh_host_ed25519_key" "$DIR/munge.key"
chmod 644 "$DIR/ssh_key.pub" "$DIR/ssh_host_ed25519_key.pub" "$DIR/known_hosts"

if [ "$(id -u)" = 0 ]; then
    chown "$WORKER_UID" "$DIR/ssh_key"
elif [ "$(stat -c %u "$DIR/ssh_key")" != "$WORKER_UID" ]; then
    log "the worker (uid $WORKER_UID) cannot read $DIR/ssh_key yet: sudo chown $WORKER_UID $DIR/ssh_key"
fi
log "ready in $DIR"
