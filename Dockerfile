# Gati server image. Mirrors what the tests run: `gati serve` on the locked environment.
FROM python:3.11-slim AS build
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy
RUN pip install --no-cache-dir uv==0.13.9
WORKDIR /app
COPY pyproject.toml uv.lock README.md ./
COPY src ./src
RUN uv sync --frozen --no-dev

FROM python:3.11-slim
RUN useradd --create-home --uid 1000 gati
WORKDIR /app
COPY --from=build /app /app
ENV PATH="/app/.venv/bin:$PATH" GATI_DATA_DIR=/data
RUN mkdir -p /data && chown gati /data
USER gati
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/health').status != 200)"
CMD ["gati", "serve", "--host", "0.0.0.0", "--port", "8000", "--workers", "2"]
