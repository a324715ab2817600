# Render node: headless Blender (bpy 5.0.1 on Python 3.11) + semcoat. One container runs what one Slurm array task
# runs: `semcoat render BATCH.json --out DIR --start I --count N`. Build from the repository root:
#   docker build -f docker/render-node.Dockerfile -t semcoat-render .
# The image is set up by scripts/setup.sh, the same script CI runs on a fresh Debian 12 machine.
FROM python:3.11-slim-bookworm

ENV DEBIAN_FRONTEND=noninteractive \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /opt/semcoat
COPY pyproject.toml README.md ./
COPY semcoat ./semcoat
COPY semcoat_cli ./semcoat_cli
COPY blender_addon ./blender_addon
COPY render_service ./render_service
COPY training ./training
COPY analysis ./analysis
COPY scripts ./scripts
RUN SEMCOAT_EXTRAS=render bash scripts/setup.sh && rm -rf /var/lib/apt/lists/*

ENV PATH=/opt/semcoat/.venv/bin:$PATH
RUN useradd --create-home --uid 1000 render
USER render
WORKDIR /home/render
ENTRYPOINT ["semcoat"]
CMD ["render", "--help"]
