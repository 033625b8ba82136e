"""GraphWriter for Neo4j: constraints first, then batched UNWIND … MERGE, one transaction per batch.

Every statement goes to the leader of a cluster (a neo4j:// URI), the reads too: the load status, the live
event log and the catalogue decide what is written next, and the counts check it, so they must see the
latest committed state, which a follower or read replica may not hold yet.
"""

from __future__ import annotations

import json
from typing import Any

import neo4j
from neo4j.exceptions import Neo4jError, ServiceUnavailable

from services.core.cypher import CypherLibrary, cypher_library
from services.core.errors import GraphError, GraphUnavailableError
from services.graph_loader.catalog import CatalogItem
from services.graph_loader.events import LiveEvent
from services.graph_loader.records import GraphCounts, GraphPart, LoadMeta
from services.graph_loader.schema import BOOKKEEPING_LABELS, ITEM_LABEL, USER_LABEL, GraphSchema


class Neo4jGraphWriter:
    def __init__(self, driver: neo4j.Driver, *, database: str, library: CypherLibrary | None = None) -> None:
        self._driver = driver
        self._database = database
        self._cypher = library or cypher_library()

    def begin_load(self, meta: LoadMeta, schema: GraphSchema) -> bool:
        for statement in ("constraint_dataset", "constraint_event", "index_event_user", "constraint_catalog"):
            self._run(self._cypher[statement])
        keys = {USER_LABEL: "id", ITEM_LABEL: "id"} | dict.fromkeys(schema.attributes, "name")
        for label, key in keys.items():
            self._run(
                self._cypher.render(
                    "constraint_unique_key", constraint=f"kgrank_{label.lower()}_{key}", label=label, key=key
                )
            )
        status = self._query(self._cypher["dataset_status"], dataset=meta.dataset)[0]
        wipe = status["status"] is not None and (status["data_hash"] != meta.data_hash or status["split"] != meta.split)
        if wipe:
            self._wipe(meta.dataset)
        self._query(
            self._cypher["dataset_begin"],
            dataset=meta.dataset,
            data_hash=meta.data_hash,
            split=meta.split,
            kgrank_version=meta.kgrank_version,
        )
        return wipe

    def write(self, dataset: str, part: GraphPart, rows: list[dict[str, Any]]) -> None:
        self._query(self._statement(part), dataset=dataset, rows=rows)

    def complete_load(self, meta: LoadMeta) -> None:
        if not self._query(self._cypher["dataset_complete"], dataset=meta.dataset, data_hash=meta.data_hash):
            raise GraphError(f"the load of {meta.dataset} was replaced by another load while running")

    def drop(self, dataset: str) -> None:
        self._wipe(dataset)
        self._run(self._cypher["events_forget"], dataset=dataset)
        self._query(self._cypher["dataset_forget"], dataset=dataset)

    def _wipe(self, dataset: str) -> None:
        """The dataset's relationships, then its nodes: every transaction stays small, hubs included."""
        self._run(self._cypher["dataset_wipe_relationships"], dataset=dataset)
        self._run(self._cypher["dataset_wipe"], dataset=dataset)

    def events(self, dataset: str) -> list[LiveEvent]:
        return [LiveEvent(**row) for row in self._query(self._cypher["events"], dataset=dataset)]

    def catalog(self, dataset: str) -> list[CatalogItem]:
        rows = self._query(self._cypher["catalog"], dataset=dataset)
        return [CatalogItem(**(row | {"attributes": json.loads(row["attributes"])})) for row in rows]

    def counts(self, dataset: str) -> GraphCounts:
        nodes = self._query(self._cypher["count_nodes"], dataset=dataset)
        relationships = self._query(self._cypher["count_relationships"], dataset=dataset)
        return GraphCounts(
            nodes={row["label"]: row["count"] for row in nodes if row["label"] not in BOOKKEEPING_LABELS},
            relationships={row["type"]: row["count"] for row in relationships},
        )

    def _statement(self, part: GraphPart) -> str:
        if part.kind == "attributes":
            return self._cypher.render("load_attributes", label=part.label or "", rel_type=part.rel_type or "")
        if part.kind == "links":
            return self._cypher.render("load_item_links", rel_type=part.rel_type or "")
        return self._cypher[f"load_{part.kind}"]

    def _query(self, query: str, **parameters: Any) -> list[dict[str, Any]]:
        try:
            records, _, _ = self._driver.execute_query(
                query, parameters_=parameters, database_=self._database, routing_=neo4j.RoutingControl.WRITE
            )
        except ServiceUnavailable as e:
            raise GraphUnavailableError(f"Neo4j became unreachable: {e}") from e
        except Neo4jError as e:
            raise GraphError(f"Neo4j rejected a load statement: {e.message}") from e
        return [record.data() for record in records]

    def _run(self, query: str, **parameters: Any) -> None:
        """Auto-commit execution, needed by schema statements and CALL … IN TRANSACTIONS."""
        try:
            with self._driver.session(database=self._database, default_access_mode=neo4j.WRITE_ACCESS) as session:
                session.run(query, parameters).consume()
        except ServiceUnavailable as e:
            raise GraphUnavailableError(f"Neo4j became unreachable: {e}") from e
        except Neo4jError as e:
            raise GraphError(f"Neo4j rejected a statement: {e.message}") from e
