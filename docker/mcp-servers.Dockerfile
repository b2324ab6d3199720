# syntax=docker/dockerfile:1
# The first-party MCP servers (notes, workspace) over streamable HTTP; one image, the command picks the server:
#   docker build -f docker/mcp-servers.Dockerfile -t mcp-assistant/mcp-servers .
#   docker run -e MCP_SERVICE_TOKEN=... mcp-assistant/mcp-servers python -m mcp_servers.workspace \
#       --transport streamable-http --host 0.0.0.0 --port 8080
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
RUN /opt/venv/bin/pip install ".[mcp-servers]"

# --- runtime: the virtualenv and a non-root user -------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="mcp-assistant-mcp-servers" \
      org.opencontainers.image.description="MCP tool-orchestrating assistant: first-party MCP servers" \
      org.opencontainers.image.licenses="MIT"
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --home-dir /app --no-create-home --shell /usr/sbin/nologin app \
    && mkdir -p /app /data \
    && chown app:app /data
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    MCP_PORT=8080 \
    NOTES_DB_PATH=/data/notes.db \
    WORKSPACE_ROOT=/data/workspace
USER 10001:10001
EXPOSE 8080
# The servers answer MCP only, behind the service token: the check is that the port accepts connections.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, socket; socket.create_connection(('127.0.0.1', int(os.environ.get('MCP_PORT', '8080'))), 4).close()"]
CMD ["python", "-m", "mcp_servers.notes", "--transport", "streamable-http", "--host", "0.0.0.0", "--port", "8080"]
