#!/usr/bin/env bash
# Set up semcoat on a fresh Debian 12 machine with Python 3.11, as root. Idempotent; safe to run again.
#
#   bash scripts/setup.sh           system packages (Blender's libraries, redis-server, Chromium for the browser
#                                   tests) + .venv/ with the whole stack, project installed
#   bash scripts/setup.sh --stack   the same, plus the real stack on loopback (Redis, Slurm, munge, sshd) started
#
# SEMCOAT_EXTRAS picks the parts to install (default "all,dev"); a render node needs only "render".
set -euo pipefail
cd "$(dirname "$0")/.."
EXTRAS=${SEMCOAT_EXTRAS:-all,dev}

PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null || PYTHON=python3
"$PYTHON" -c 'import sys; assert sys.version_info[:2] == (3, 11), sys.version' 2>/dev/null \
    || { echo "setup: Python 3.11 is required (found: $("$PYTHON" --version 2>&1))" >&2; exit 1; }

# Shared libraries that bpy (Blender as a Python module) loads; libegl1 and Mesa's llvmpipe (libgl1-mesa-dri) for
# the render node's OpenGL engines (raster, Workbench) without a GPU (without them it falls back to Cycles). Only where bpy
# goes (render, all): an API or trainer image needs none of them (libgl1 alone brings Mesa and LLVM).
BPY_LIBS=(libx11-6 libxrender1 libxfixes3 libxi6 libxkbcommon0 libsm6 libgl1 libegl1 libgl1-mesa-dri)
case ",$EXTRAS," in *,all,*|*,render,*) wanted=("${BPY_LIBS[@]}") ;; *) wanted=() ;; esac
# The dashboard's browser tests (dev extra) drive Debian's headless Chromium through Debian's chromedriver.
case ",$EXTRAS," in *,dev,*) wanted+=(chromium chromium-driver) ;; esac
# The embedded default (`semcoat serve` with no SEMCOAT_REDIS_URL, the demo) starts its own redis-server. Only for the
# whole stack: a service host or image with `service` alone is given a Redis URL (compose runs Redis beside it).
case ",$EXTRAS," in *,all,*) wanted+=(redis-server) ;; esac
# Debian's python3.11 makes virtual environments only with python3.11-venv (ensurepip).
"$PYTHON" -c 'import ensurepip, venv' 2>/dev/null || wanted+=(python3.11-venv)
missing=()
for p in "${wanted[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing ${missing[*]}" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
source scripts/pip-install.sh
case ",$EXTRAS," in
    *,all,*|*,train,*)
        # torch first and pinned: any other torch request pulls a CUDA build of several GB. A container build names
        # the build of 2.13.0 it wants and an index holding it (SEMCOAT_TORCH=torch==2.13.0+cpu,
        # SEMCOAT_TORCH_INDEX_URL; docker/semcoat.Dockerfile); unset, pip's own configuration finds the CPU build.
        pip_install .venv/bin/pip ${SEMCOAT_TORCH_INDEX_URL:+--extra-index-url "$SEMCOAT_TORCH_INDEX_URL"} \
            "${SEMCOAT_TORCH:-torch==2.13.0}"
        ;;
esac
pip_install .venv/bin/pip -e ".[$EXTRAS]"
.venv/bin/python scripts/check_env.py "$EXTRAS" \
    || { echo "setup: the environment in .venv is incomplete (see pip's messages above)" >&2; exit 1; }

if [ "${1:-}" = "--stack" ]; then
    bash scripts/stack.sh install
    bash scripts/stack.sh up
fi
echo "setup: ready (.venv/bin/semcoat)" >&2
