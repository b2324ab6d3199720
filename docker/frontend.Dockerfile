# syntax=docker/dockerfile:1
# The frontend (Flask under gunicorn, port 8080). Build from the repository root:
#   docker build -f docker/frontend.Dockerfile -t mcp-assistant/frontend .
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
# The frontend shares the settings helpers of the orchestrator's package, not its dependencies.
RUN /opt/venv/bin/pip install ".[frontend]"

# --- runtime: the virtualenv and a non-root user -------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="mcp-assistant-frontend" \
      org.opencontainers.image.description="MCP tool-orchestrating assistant: the chat UI and sign-in" \
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
    ENVIRONMENT=production \
    FRONTEND_HOST=0.0.0.0 \
    FRONTEND_PORT=8080 \
    DATA_DIR=/data
USER 10001:10001
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('FRONTEND_PORT', '8080'), timeout=4)"]
CMD ["python", "-m", "frontend"]
