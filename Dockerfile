# Placeholder until the operations issue: a slim image that runs the daemon as a non-root user.
# State lives on a volume; the config is mounted read-only.
FROM python:3.11-slim
RUN useradd --system --home /var/lib/pollerd pollerd
WORKDIR /app
COPY pyproject.toml README.md ./
COPY pollerd ./pollerd
RUN pip install --no-cache-dir .
USER pollerd
VOLUME ["/var/lib/pollerd"]
EXPOSE 9108
STOPSIGNAL SIGTERM
ENTRYPOINT ["pollerd"]
CMD ["run", "-c", "/etc/pollerd/pollerd.toml"]
