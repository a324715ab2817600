# syntax=docker/dockerfile:1
# semcoat's images, one build target each. Build from the repository root, e.g.
#   docker build -f docker/semcoat.Dockerfile --target api -t semcoat-api .
#
#   api           `semcoat serve` with SEMCOAT_REDIS_URL set: the REST API only (extra: service)
#   worker        `semcoat worker`: Celery tasks and the backends' polls (extras: service,render,train: the local
#                 backend renders and trains in it; --build-arg WORKER_EXTRAS=service where all goes to Slurm)
#   render-node   `semcoat render ...`: what one Slurm array task runs (extra: render, bpy 5.0.1)
#   trainer       `semcoat train ...` (extra: train, torch 2.13.0; CPU build unless TORCH says otherwise). DataLoader
#                 workers share memory: run it with --shm-size=2g (Docker's 64 MB makes them fail)
#   test-cluster  slurmctld, a compute node or a login node (sshd) of docker/compose.yaml's test cluster (built on
#                 the worker image: its jobs render and train with the same environment, built once)
#
# Every target is set up by scripts/setup.sh with the extras it needs, the script CI runs on a fresh Debian 12
# machine, and runs as the unprivileged user semcoat (uid 10001), except test-cluster, whose sshd and slurmd must be
# root (privilege separation, jobs started as the cluster user). No secret is in any image: tokens live in the API's
# database (`semcoat token create`), the SSH key, known_hosts and the munge key are secrets given at run time.
# pip's downloads stay in a build cache (BuildKit), not in the images.

# torch stays 2.13.0 (the train extra pins it); these pick which build of it, for every image with the train extra.
# The default is the CPU build from PyTorch's CPU index (a few hundred MB). On a GPU cluster choose a CUDA build of
# the same version, e.g.
#   --build-arg TORCH=torch==2.13.0+cu128 --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cu128
# (or TORCH=torch==2.13.0 TORCH_INDEX_URL= for PyPI's own wheel, itself a CUDA build of several GB).
ARG TORCH=torch==2.13.0+cpu
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu

FROM python:3.11-slim-bookworm AS source
ENV DEBIAN_FRONTEND=noninteractive \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONUNBUFFERED=1
RUN groupadd --gid 10001 semcoat \
    && useradd --uid 10001 --gid semcoat --create-home --shell /usr/sbin/nologin semcoat
WORKDIR /opt/semcoat
COPY pyproject.toml README.md ./
COPY semcoat ./semcoat
COPY semcoat_cli ./semcoat_cli
COPY blender_addon ./blender_addon
COPY render_service ./render_service
COPY training ./training
COPY analysis ./analysis
COPY scripts ./scripts
COPY docker/healthcheck.py ./docker/healthcheck.py
ENV PATH=/opt/semcoat/.venv/bin:$PATH
ENTRYPOINT ["semcoat"]


FROM source AS api
RUN --mount=type=cache,target=/root/.cache/pip \
    SEMCOAT_EXTRAS=service bash scripts/setup.sh
RUN install -d -o semcoat -g semcoat -m 750 /var/lib/semcoat
ENV SEMCOAT_DATA_DIR=/var/lib/semcoat
USER semcoat
WORKDIR /home/semcoat
EXPOSE 8000
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]


FROM source AS worker
ARG WORKER_EXTRAS=service,render,train
ARG TORCH
ARG TORCH_INDEX_URL
RUN --mount=type=cache,target=/root/.cache/pip \
    SEMCOAT_EXTRAS="$WORKER_EXTRAS" SEMCOAT_TORCH="$TORCH" SEMCOAT_TORCH_INDEX_URL="$TORCH_INDEX_URL" \
    bash scripts/setup.sh && rm -rf /var/lib/apt/lists/*
RUN install -d -o semcoat -g semcoat -m 750 /var/lib/semcoat
ENV SEMCOAT_DATA_DIR=/var/lib/semcoat
USER semcoat
WORKDIR /home/semcoat
CMD ["worker", "--concurrency", "2", "--loglevel", "INFO"]


FROM source AS render-node
RUN --mount=type=cache,target=/root/.cache/pip \
    SEMCOAT_EXTRAS=render bash scripts/setup.sh && rm -rf /var/lib/apt/lists/*
USER semcoat
WORKDIR /home/semcoat
CMD ["render", "--help"]


FROM source AS trainer
ARG TORCH
ARG TORCH_INDEX_URL
RUN --mount=type=cache,target=/root/.cache/pip \
    SEMCOAT_EXTRAS=train SEMCOAT_TORCH="$TORCH" SEMCOAT_TORCH_INDEX_URL="$TORCH_INDEX_URL" bash scripts/setup.sh
USER semcoat
WORKDIR /home/semcoat
CMD ["train", "--help"]


FROM worker AS test-cluster
USER root
WORKDIR /opt/semcoat
# The loopback stack's Debian packages (Slurm, munge, OpenSSH), installed by its own script. Their install scripts
# make a munge key and SSH host keys: removed, every container gets its keys from secrets at start.
RUN bash scripts/stack.sh packages \
    && rm -f /etc/munge/munge.key /etc/ssh/ssh_host_* \
    && rm -rf /var/lib/apt/lists/*
# The account jobs run as (stack.sh's cluster user); '*': no password, yet not locked (sshd refuses locked ones).
RUN useradd --create-home --shell /bin/bash semcoat-hpc && usermod -p '*' semcoat-hpc
COPY docker/cluster-entrypoint.sh ./docker/cluster-entrypoint.sh
ENTRYPOINT ["bash", "/opt/semcoat/docker/cluster-entrypoint.sh"]
