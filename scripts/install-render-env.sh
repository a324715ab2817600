#!/usr/bin/env bash
# Install the cluster's environment where Slurm jobs can use it: a virtual environment holding semcoat with the
# `render` extra (bpy 5.0.1, numpy, scipy, OpenCV; no torch) and, with --extras render,train, the `train` extra too
# (torch 2.13.0 CPU pinned, Lightning, MONAI, ONNX), readable and runnable by every user.
#
#   bash scripts/install-render-env.sh PREFIX [--python PYTHON] [--editable] [--extras render[,train]]
#
# On a cluster, run it on the login node into a shared folder (e.g. /shared/apps/semcoat), with a Python 3.11 every
# compute node can run. --editable points the environment at this checkout (development, the loopback stack) instead
# of copying the code. Then `PREFIX/bin/semcoat render ...` is the command an array task runs, and `PREFIX/bin/semcoat
# train fit ...` the one a training job runs under srun.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD

PREFIX=${1:?usage: install-render-env.sh PREFIX [--python PYTHON] [--editable] [--extras render[,train]]}
shift
PYTHON=python3.11
EDITABLE=0
EXTRAS=render
while [ $# -gt 0 ]; do
    case "$1" in
        --python) PYTHON=${2:?--python needs a value}; shift 2 ;;
        --editable) EDITABLE=1; shift ;;
        --extras) EXTRAS=${2:?--extras needs a value}; shift 2 ;;
        *) echo "install-render-env: unknown option $1" >&2; exit 2 ;;
    esac
done
case ",$EXTRAS," in
    *,render,*) ;;
    *) echo "install-render-env: --extras $EXTRAS: the cluster's environment always holds 'render' (e.g. render,train)" >&2
       exit 2 ;;
esac
for extra in ${EXTRAS//,/ }; do
    case "$extra" in
        render|train|analysis) ;;
        *) echo "install-render-env: --extras: unknown extra '$extra'; accepted: render, train, analysis" >&2; exit 2 ;;
    esac
done
"$PYTHON" -c 'import sys; assert sys.version_info[:2] == (3, 11)' 2>/dev/null \
    || { echo "install-render-env: $PYTHON is not Python 3.11 (bpy 5.0.1 needs 3.11)" >&2; exit 1; }

[ -x "$PREFIX/bin/python" ] || "$PYTHON" -m venv "$PREFIX"
source "$REPO/scripts/pip-install.sh"
case ",$EXTRAS," in
    # torch first and pinned (as setup.sh does): any other torch request pulls a CUDA build of several GB
    *,train,*) pip_install "$PREFIX/bin/pip" torch==2.13.0 ;;
esac
if [ $EDITABLE = 1 ]; then
    pip_install "$PREFIX/bin/pip" -e "$REPO[$EXTRAS]"
else
    pip_install "$PREFIX/bin/pip" "$REPO[$EXTRAS]"
    pip_install "$PREFIX/bin/pip" --force-reinstall --no-deps "$REPO"   # the code of this checkout, even at an unchanged version
fi
"$PREFIX/bin/python" "$REPO/scripts/check_env.py" "$EXTRAS" \
    || { echo "install-render-env: the environment in $PREFIX is incomplete (see pip's messages above)" >&2; exit 1; }
chmod -R a+rX "$PREFIX"
echo "install-render-env: ready ($PREFIX/bin/semcoat, extras $EXTRAS)" >&2
