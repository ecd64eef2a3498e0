# The conformance suite as a container image: for the GitLab CI template (ci/) and the
# in-cluster Job (python -m conformance incluster). Client side only; no sandbox servers.
#
#   docker build -t conformance-suite:0.1.0 .
#   docker build --build-arg UID=2222 -t conformance-suite:0.1.0-uid2222 .   # Run:ai / Coder workspaces
# Without Docker: scripts/build-image.sh (buildah, on a local Debian base passed as BASE; see README).
ARG BASE=python:3.11.7-slim-bookworm
FROM ${BASE}

ARG UID=10001
ARG GID=10001
# Where pip gets the client lock's wheels: PyPI by default; scripts/build-image.sh mounts a folder of
# wheels it downloaded and passes PIP_FIND_LINKS=<folder> PIP_NO_INDEX=1. Build-time only, not in the image.
ARG PIP_FIND_LINKS=""
ARG PIP_NO_INDEX=0

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTEST_ADDOPTS="-p no:cacheprovider" \
    CONFORMANCE_HOME=/opt/conformance

# git and ssh for the GitLab checks; nothing else from Debian. The in-cluster Job and Run:ai/Coder
# workspaces run the image as UID 2222, so that user exists too: ssh refuses to run for a UID
# without a passwd entry ("No user exists for uid 2222").
RUN apt-get update \
    && apt-get install -y --no-install-recommends git openssh-client ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --gid "${GID}" conformance \
    && useradd --uid "${UID}" --gid "${GID}" --create-home --shell /usr/sbin/nologin conformance \
    && if [ "${UID}" != 2222 ]; then \
        groupadd --gid 2222 workspace \
        && useradd --uid 2222 --gid 2222 --create-home --shell /usr/sbin/nologin workspace; \
    fi

WORKDIR /opt/conformance
# requirements-image.lock: the client lock (what a workspace installs too) plus Optuna, which only the
# cluster vantage's job runs (conformance/tuning.py).
COPY requirements-client.lock requirements-image.lock ./
RUN pip install --no-deps -r requirements-image.lock

COPY conftest.py pyproject.toml README.md ./
COPY conformance/ conformance/
COPY profiles/ profiles/
RUN mkdir -p reports && chown "${UID}:${GID}" reports

USER ${UID}:${GID}
ENTRYPOINT ["python", "-m", "pytest"]
CMD ["--help"]
