"""JSON bodies of the API's actions (uploads are multipart forms, declared in the routes)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Decision(Body):
    reason: str = Field(max_length=4000, description="Why (kept in the ledger).")


class Run(Body):
    collections: list[str] | None = Field(
        default=None, description="Must be the approved collections, if given."
    )


class Authorisation(Body):
    granted: bool = Field(description="False records the authority's refusal (purges results).")
    reference: str | None = Field(default=None, max_length=500)


class Review(Body):
    decision: str = Field(description="confirm or reject (final).")


class Export(Body):
    candidates: bool = Field(default=False, description="Include unconfirmed matches (ledgered).")
    format: Literal["json", "html"] = "json"


class NewCollection(Body):
    name: str = Field(max_length=200)
    legal_basis: str = Field(max_length=4000)
    policy: dict[str, Any] = Field(
        default_factory=dict, description="Policy fields, as in `collection create`."
    )


class OptOutRemoval(Body):
    reason: str = Field(max_length=4000)
