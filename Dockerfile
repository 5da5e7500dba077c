# One image for the tracker (the default command) and the terminal client (`chat-client`).
#
#   docker build -t groupchat .                                  # official python:3.12-slim
#   docker build --build-arg PYTHON_IMAGE=groupchat-local-base:bookworm -t groupchat .
#
# PYTHON_IMAGE is any image with python3 (>= 3.11) whose `python3 -m venv` works: the official
# python images, or the Debian base that scripts/build-local-base makes where no registry is reachable.
ARG PYTHON_IMAGE=python:3.12-slim

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
RUN python3 -m venv /opt/venv
WORKDIR /src
COPY pyproject.toml requirements.lock ./
# Dependencies in their own layer, so that editing the code or README does not download them again.
# Exactly the versions in requirements.lock (scripts/lock makes it from pyproject.toml), each file
# checked against its sha256 there; --no-deps: nothing outside the lock is resolved or installed.
RUN /opt/venv/bin/pip install --require-hashes --no-deps -r requirements.lock
COPY README.md ./
COPY services ./services
# pip check: the lock holds everything the project and its dependencies require, in range.
RUN /opt/venv/bin/pip install --no-deps . \
    && /opt/venv/bin/pip check \
    && /opt/venv/bin/chat-tracker --help >/dev/null \
    && /opt/venv/bin/chat-client --help >/dev/null

FROM ${PYTHON_IMAGE}
# A fixed UID/GID, so that files in the /data volume keep one owner across rebuilds and base images.
ARG APP_UID=10001
RUN groupadd --gid "${APP_UID}" chat \
    && useradd --uid "${APP_UID}" --gid chat --create-home --home-dir /home/chat --shell /usr/sbin/nologin chat \
    && mkdir -p /data \
    && chown chat:chat /data
COPY --from=build /opt/venv /opt/venv
COPY scripts/healthcheck /usr/local/bin/chat-healthcheck
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    TRACKER_HOST=0.0.0.0 \
    TRACKER_PORT=8000 \
    TRACKER_DATA_DIR=/data
USER ${APP_UID}:${APP_UID}
WORKDIR /home/chat
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 CMD ["chat-healthcheck"]
# Exec form: the tracker is PID 1 and gets SIGTERM itself, so `docker stop` runs its goodbye path.
CMD ["chat-tracker"]
