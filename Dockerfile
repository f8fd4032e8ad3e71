# FileDock: the OpenAI Files API, self-hosted, as one container.
#   docker build -t filedock .
#   docker run -p 8000:8000 -v filedock-data:/data filedock
# Settings are FILEDOCK_* environment variables (docs/configuration.md); state lives in /data.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /srv/filedock

# The dependencies get their own layer, so a code change does not reinstall them.
COPY pyproject.toml README.md ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

# A regular install, as `pip install .` anywhere: the wheel carries migrations/ and alembic.ini
# (to <prefix>/share/filedock), so the tree it was built from is removed again, and the build
# fails if the installed package cannot find its migrations.
COPY alembic.ini ./
COPY migrations ./migrations
COPY app ./app
RUN pip install --no-deps . \
    && rm -rf app migrations alembic.ini build *.egg-info \
    && cd / \
    && python -c "from app.metadata.migrate import migrations_dir as d; assert (d() / 'env.py').is_file(), d()"

RUN useradd --system --user-group --uid 10001 --home-dir /srv/filedock --no-create-home filedock \
    && mkdir /data \
    && chown filedock:filedock /data
USER filedock

ENV FILEDOCK_DATA_DIR=/data \
    FILEDOCK_HOST=0.0.0.0 \
    FILEDOCK_PORT=8000
VOLUME /data
EXPOSE 8000

# slim has no curl; urlopen raises (exit 1) on a refused connection, a timeout or a non-2xx answer.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]

# `serve` migrates the database, then serves; `docker run IMAGE migrate` runs migrations only.
ENTRYPOINT ["filedock"]
CMD ["serve"]
