# Dunning worker / API / CLI image (used by docker-compose.yml for migrate, worker and api).
FROM python:3.11.13-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Sources only (see .dockerignore); the pinned versions come from constraints.txt.
COPY . /app
RUN pip install -c constraints.txt . \
    && useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin dunning

# Never run as root; nothing here needs to write to the image.
USER dunning

EXPOSE 8000
ENTRYPOINT ["dunning"]
CMD ["worker"]
