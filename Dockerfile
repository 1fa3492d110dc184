# syntax=docker/dockerfile:1
# etcd-latency-exporter: build with `docker build -t etcd-latency-exporter:0.1.0 .` (BuildKit).
# The final stage holds the interpreter, the installed wheels and nothing else: no compiler, no
# pip cache, no source tree. It runs as the numeric user 65532 and writes nothing outside /tmp,
# so it works with readOnlyRootFilesystem.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm
# The same Python and Debian release with a C compiler, for the parser's optional C extension.
ARG BUILDER_IMAGE=python:3.11-bookworm

FROM ${BUILDER_IMAGE} AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml setup.py README.md ./
COPY exporter ./exporter
# Wheels of the project and every dependency; the final stage installs from these only.
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM ${PYTHON_IMAGE}
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG SOURCE=""
LABEL org.opencontainers.image.title="etcd-latency-exporter" \
      org.opencontainers.image.description="Finds the etcd on a slow disk: per-shoot etcd latency metrics labelled with PersistentVolume and StorageClass" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}"
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
# pip compiles the bytecode at install time, so nothing needs to be written at run time.
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    pip install --no-cache-dir --no-index --find-links=/wheels "etcd-latency-exporter==${VERSION}"
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/tmp
WORKDIR /tmp
USER 65532:65532
EXPOSE 18379
ENTRYPOINT ["etcd-latency-exporter"]
CMD ["run"]
