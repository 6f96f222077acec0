"""The flows as the SageMaker API sees them (visionloop.sagemaker): every review flow, the
CreateFlowDefinition request kept beside a flow created that way (table flow_definitions, migration
0014), and deleting a flow that has no human loops. SqlRepository inherits it."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from sqlalchemy import delete, exists, insert, select

from visionloop.core.records.review import FlowDefinition
from visionloop.storage import schema as t
from visionloop.storage.base import SqlStore
from visionloop.storage.review import _flow


class FlowDefinitionStore(SqlStore):
    """Mixin of SqlRepository: the flow_definitions table and the flows across projects."""

    def list_flows(self) -> list[FlowDefinition]:
        """Every project's flow, oldest first."""
        q = (
            select(t.review_flows, t.projects.c.name.label("project"), t.projects.c.task)
            .join(t.projects, t.projects.c.id == t.review_flows.c.project_id)
            .order_by(t.review_flows.c.created_at, t.review_flows.c.id)
        )
        with self._read() as conn:
            return [_flow(r._mapping) for r in conn.execute(q).all()]

    def put_flow_definition(self, flow_id: int, definition: Mapping[str, Any]) -> None:
        text = json.dumps(definition, sort_keys=True)
        with self._write() as conn:
            conn.execute(delete(t.flow_definitions).where(t.flow_definitions.c.flow_id == flow_id))
            conn.execute(insert(t.flow_definitions).values(flow_id=flow_id, definition=text))

    def get_flow_definition(self, flow_id: int) -> dict[str, Any] | None:
        q = select(t.flow_definitions.c.definition).where(t.flow_definitions.c.flow_id == flow_id)
        with self._read() as conn:
            found = conn.execute(q).scalar()
        return None if found is None else dict(json.loads(found))

    def delete_flow(self, flow_id: int) -> bool:
        """Delete the flow (and its kept definition) unless it has human loops, in one transaction;
        False when it has loops or does not exist."""
        has_loops = exists().where(t.human_loops.c.flow_id == flow_id)
        with self._write() as conn:
            if conn.execute(select(has_loops)).scalar():
                return False
            conn.execute(delete(t.flow_definitions).where(t.flow_definitions.c.flow_id == flow_id))
            done = conn.execute(delete(t.review_flows).where(t.review_flows.c.id == flow_id, ~has_loops))
        return done.rowcount == 1
