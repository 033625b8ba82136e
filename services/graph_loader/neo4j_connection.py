"""Open a Neo4j driver and turn connection failures into one clear error naming the setting to fix."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

import neo4j
from neo4j.exceptions import (
    AuthError,
    ConfigurationError,
    Neo4jError,
    ServiceUnavailable,
    SessionExpired,
    TransientError,
)

from services.core.errors import ConfigError, GraphAuthError, GraphError, GraphUnavailableError
from services.core.settings import Settings

logger = logging.getLogger(__name__)

# bolt…: one server. neo4j…: routing, for a cluster (a single server answers it too): the driver sends each
# read transaction to a follower or read replica and each write to the leader. +s: TLS, +ssc: TLS accepting
# a self-signed certificate.
BOLT_SCHEMES = ("bolt", "bolt+s", "bolt+ssc", "neo4j", "neo4j+s", "neo4j+ssc")


def checked_uri(settings: Settings) -> str:
    """The configured Neo4j URI; ConfigError when it is missing or not a bolt or neo4j scheme."""
    uri = settings.neo4j_uri
    if not uri:
        raise ConfigError("no Neo4j URI configured (set KGRANK_NEO4J_URI or pass --neo4j-uri)")
    scheme = uri.split("://", 1)[0] if "://" in uri else ""
    if scheme not in BOLT_SCHEMES:
        raise ConfigError(f"invalid Neo4j URI {uri!r} (KGRANK_NEO4J_URI): use one of {', '.join(BOLT_SCHEMES)}://")
    try:
        urlsplit(uri).port  # noqa: B018 - parsing is the check
    except ValueError as e:
        raise ConfigError(f"invalid Neo4j URI {uri!r} (KGRANK_NEO4J_URI): {e}") from e
    return uri


def _driver_options(settings: Settings) -> tuple[str, dict[str, Any]]:
    """The URI and driver options every kgrank connection uses (one place for auth and timeouts)."""
    uri = checked_uri(settings)
    password = settings.neo4j_password.get_secret_value() if settings.neo4j_password else None
    return uri, {
        "auth": (settings.neo4j_user, password) if password is not None else None,
        "connection_timeout": settings.neo4j_timeout_s,
        "connection_acquisition_timeout": settings.neo4j_timeout_s,
        "notifications_min_severity": "OFF",
        # Transient errors are retried, but never for longer than a request may wait.
        "max_transaction_retry_time": settings.neo4j_timeout_s,
    }


def async_driver(settings: Settings) -> neo4j.AsyncDriver:
    """An async driver for serving, not connected yet (the API starts while Neo4j is down). The driver would
    retry an unreachable server until its retry time ran out: serving turns that off and fails at once, so
    its breaker answers the next requests fast (services/ranker/serving/graph.py retries what is worth retrying)."""
    uri, options = _driver_options(settings)
    try:
        return neo4j.AsyncGraphDatabase.driver(uri, **(options | {"max_transaction_retry_time": 0}))
    except (ConfigurationError, ValueError) as e:
        raise ConfigError(f"invalid Neo4j URI {uri!r} (KGRANK_NEO4J_URI): {e}") from e


def open_driver(settings: Settings) -> neo4j.Driver:
    """A connected driver for `settings.neo4j_uri`; raises a GraphError leaf when it cannot connect."""
    uri, options = _driver_options(settings)
    try:
        driver = neo4j.GraphDatabase.driver(uri, **options)
    except (ConfigurationError, ValueError) as e:
        raise ConfigError(f"invalid Neo4j URI {uri!r} (KGRANK_NEO4J_URI): {e}") from e
    try:
        driver.verify_connectivity()
        # A read: it checks the credentials and the database on any member, also while a cluster elects a leader.
        driver.execute_query("RETURN 1", database_=settings.neo4j_database, routing_=neo4j.RoutingControl.READ)
    except AuthError as e:
        driver.close()
        raise GraphAuthError(
            f"Neo4j at {uri} refused user {settings.neo4j_user!r}: check KGRANK_NEO4J_USER and KGRANK_NEO4J_PASSWORD",
            uri=uri,
        ) from e
    except (ServiceUnavailable, OSError) as e:
        driver.close()
        raise GraphUnavailableError(
            f"cannot reach Neo4j at {uri} (KGRANK_NEO4J_URI): {e}; is it running? (`make neo4j-up`)", uri=uri
        ) from e
    except Neo4jError as e:
        driver.close()
        raise GraphError(f"Neo4j at {uri} rejected a test query: {e.message}", uri=uri) from e
    return driver


@contextmanager
def neo4j_errors(action: str, where: str | None = None) -> Iterator[None]:
    """Driver exceptions during `action` as kgrank errors: refused, unreachable or busy → GraphUnavailableError,
    a rejected statement → GraphError."""
    server = f"Neo4j at {where}" if where else "Neo4j"
    try:
        yield
    except AuthError as e:
        raise GraphUnavailableError(f"{server} refused the credentials") from e
    except (ServiceUnavailable, SessionExpired, OSError, ValueError) as e:  # ValueError: unresolvable address
        raise GraphUnavailableError(f"{server} is unreachable: {e}") from e
    except TransientError as e:  # still failing after the retries: busy, not broken
        raise GraphUnavailableError(f"{server} is busy ({action}): {e.message}") from e
    except Neo4jError as e:
        raise GraphError(f"Neo4j rejected {action}: {e.message}") from e
