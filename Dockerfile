# syntax=docker/dockerfile:1
# etcd-latency-exporter: build with `docker build -t etcd-latency-exporter:0.1.0 .` (BuildKit), or
# with `make image` (podman, from base images made of Debian packages, no registry needed).
#
# The builder makes a virtualenv at /opt/venv holding the project and its dependencies; the final
# stage copies that and nothing else: no compiler, no pip or setuptools, no caches, no source tree.
# The venv's python is a link to the builder's python3, so both base images must be the same
# Python build at the same path: python:3.11-bookworm with python:3.11-slim-bookworm (what users
# build from), or the two Debian bases `make image` makes (/usr/bin/python3 in both). The image
# runs as the numeric user 65532 and writes nothing outside /tmp (readOnlyRootFilesystem).

ARG PYTHON_IMAGE=python:3.11-slim-bookworm
# The same Python and Debian release with a C compiler, for the parser's optional C extension.
ARG BUILDER_IMAGE=python:3.11-bookworm

FROM ${BUILDER_IMAGE} AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_ROOT_USER_ACTION=ignore \
    PYTHONDONTWRITEBYTECODE=1
# A virtualenv, not a system-wide install: Debian's python3 refuses those (PEP 668), and it needs
# no pip in the base. From here on `python3` is the venv's.
RUN python3 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY pyproject.toml setup.py README.md ./
COPY exporter ./exporter
# Cut from the venv what never runs: pip and setuptools, the dependencies' test suites, and the
# extension modules' symbol tables (strip: 12 MB).
# Bytecode is compiled here, once, because the root filesystem is read-only at run time: without
# it every start would compile the 1,100 modules `run` imports in memory (1.6 s of CPU become 5).
# Left out: the synchronous Kubernetes client's generated API and model classes (23 MB of
# bytecode); the exporter uses kubernetes.aio, and a module without bytecode still imports.
# unchecked-hash: the bytecode is used as it is, without comparing the sources' timestamps, which
# the copy to the final stage need not keep; in an image the two never change apart. The .py
# files stay, for tracebacks. The last step fails the build if the C extension was not built
# (optional elsewhere, required here).
RUN python3 -m pip install --no-compile . \
 && python3 -m pip uninstall --yes pip setuptools \
 && find /opt/venv -depth -type d \( -name __pycache__ -o -path "*/site-packages/*/tests" \) -exec rm -rf {} + \
 && find /opt/venv -name "*.so" -exec strip --strip-unneeded {} + \
 && python3 -m compileall -q -j 0 --invalidation-mode unchecked-hash \
      -x "/kubernetes/client/(api|models)/(?!__init__\.py)" /opt/venv/lib \
 && python3 -I -c "import exporter.commands.parse._shapes"

FROM ${PYTHON_IMAGE}
COPY --from=builder /opt/venv /opt/venv
# MALLOC_MMAP_THRESHOLD_ is not set: `run` fixes glibc's mmap threshold itself at start
# (exporter/runtime/malloctune.py, the same setting), and the variable would turn that code off.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/tmp
# Fails the build here, not at the first start, when the two base images do not match.
RUN ["etcd-latency-exporter", "--version"]
# Labels last: a new revision rebuilds no layer.
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG SOURCE=""
LABEL org.opencontainers.image.title="etcd-latency-exporter" \
      org.opencontainers.image.description="Finds the etcd on a slow disk: per-shoot etcd latency metrics labelled with PersistentVolume and StorageClass" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}"
WORKDIR /tmp
USER 65532:65532
EXPOSE 18379
ENTRYPOINT ["etcd-latency-exporter"]
CMD ["run"]
