# One image for every Keel process: `keel serve` (the default command), `keel worker`,
# `keel store check` (the migration) and any other CLI command. The project folder is
# /project: mount a keel.yaml there (deploy/keel.yaml reads addresses and secrets from
# the environment). Build: docker build -t keel .

FROM python:3.12-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

FROM python:3.12-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
COPY --from=build /wheels /wheels
# the production extras: PostgreSQL (metadata), Redis (online features, limits, cache),
# S3 (artifacts, data, prediction-log segments)
RUN pip install "$(ls /wheels/*.whl)[postgres,redis,s3]" && rm -rf /wheels
RUN useradd --uid 10001 --user-group --home-dir /project --create-home keel
WORKDIR /project
USER 10001:10001
EXPOSE 8000
# /healthz answers while the process is alive; /readyz (model loaded, stores reachable)
# is for load balancers and Kubernetes readiness. Worker and one-shot containers turn
# this check off (deploy/compose.yaml).
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"]
ENTRYPOINT ["keel"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000", "--project", "/project"]
