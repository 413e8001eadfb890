# pollerd in a container: slim Python, a non-root user, state on a volume, the config mounted
# read-only at /etc/pollerd/pollerd.toml (see config/docker.toml), /metrics and friends on 9108.
# Stop it with a timeout longer than daemon.drain_grace: docker run --stop-timeout 30 ...
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml README.md LICENSE ./
COPY pollerd ./pollerd
RUN pip install --no-cache-dir . \
    && useradd --system --uid 10001 --home-dir /var/lib/pollerd --shell /usr/sbin/nologin pollerd \
    && mkdir -p /var/lib/pollerd /etc/pollerd \
    && chown pollerd:pollerd /var/lib/pollerd

USER 10001:10001
WORKDIR /var/lib/pollerd
VOLUME ["/var/lib/pollerd"]
EXPOSE 9108
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 \
    CMD ["pollerd", "healthcheck", "-c", "/etc/pollerd/pollerd.toml"]
ENTRYPOINT ["pollerd"]
CMD ["run", "-c", "/etc/pollerd/pollerd.toml"]
