"""One error root with specific leaves; the CLI prints one line per error, the API maps them to HTTP."""

from __future__ import annotations

from typing import Any


class KgrankError(Exception):
    """Root of every error kgrank raises on purpose. `details` is machine-readable context."""

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class ConfigError(KgrankError):
    """A setting or option has a value kgrank cannot use."""


class DatasetError(KgrankError):
    """Raw or processed data cannot be read or used."""


class DatasetNotFoundError(DatasetError):
    """A required file or folder does not exist."""


class DatasetFormatError(DatasetError):
    """A file exists but its content is not in the expected format (columns, encoding, values)."""


class EmptyDatasetError(DatasetError):
    """Nothing is left to work with (e.g. after the k-core filter)."""


class DownloadError(DatasetError):
    """An archive could not be fetched or unpacked."""


class GraphError(KgrankError):
    """Something went wrong talking to a knowledge graph (Neo4j or embedded)."""


class GraphUnavailableError(GraphError):
    """The graph server cannot be reached."""


class GraphAuthError(GraphError):
    """The graph server refused the credentials."""


class GraphNotLoadedError(GraphError):
    """The graph holds no complete load of the requested dataset."""


class CypherLibraryError(KgrankError):
    """A named Cypher statement is missing or was asked for with an invalid slot value."""


class ModelError(KgrankError):
    """A model checkpoint or configuration cannot be used."""


class ModelNotFoundError(ModelError):
    """A checkpoint or model folder does not exist."""


class ScorerError(KgrankError):
    """The LLM scorer (in-process or a vLLM server) could not answer, or answered something unusable."""


class RequestError(KgrankError):
    """A ranking or path request is invalid as a whole."""


class ConflictError(RequestError):
    """A write that contradicts what is stored (409): an event id recorded before with a different body (a client
    bug, not a retry), or a catalogue write to an item of the dataset itself."""


class UnknownItemsError(RequestError):
    """Some item ids are not in the graph; `details["item_ids"]` names them."""
