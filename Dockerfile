# The kgrank image: the API (`kgrank serve`) and the one-shot loader of docker-compose.yml.
FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY kgrank kgrank
COPY services services
COPY training training
COPY cypher cypher
COPY deploy/compose deploy/compose
RUN pip install .
EXPOSE 8080
CMD ["kgrank", "serve", "--host", "0.0.0.0", "--port", "8080"]
