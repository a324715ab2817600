#!/usr/bin/env bash
# pip_install PIP ARGS...: `PIP install -q ARGS` whose own exit status decides; the machine's notes about its extra
# package folders ("WARNING: Location ... is ignored") are dropped, anything else pip says is shown.
# Sourced by setup.sh and install-render-env.sh.
pip_install() {
    local pip=$1 log
    shift
    log=$(mktemp)
    if ! "$pip" install -q --disable-pip-version-check "$@" >"$log" 2>&1; then
        grep -v "^WARNING: Location" "$log" >&2
        rm -f "$log"
        echo "pip install $* failed (see above)" >&2
        return 1
    fi
    grep -v "^WARNING: Location" "$log" >&2 || true
    rm -f "$log"
}
