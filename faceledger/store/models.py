"""The relational schema. Portable SQL only: it must run on SQLite and PostgreSQL alike."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Collection(Base):
    """A named set of indexed faces, with where it came from and on what legal basis."""

    __tablename__ = "collections"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    source: Mapped[str | None] = mapped_column(Text)
    legal_basis: Mapped[str | None] = mapped_column(Text)
    retention_days: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # Search policy: who may search, under which conditions, with what limits.
    search_roles: Mapped[list[str]] = mapped_column(JSON, default=lambda: ["investigator"])
    approval_required: Mapped[bool] = mapped_column(Boolean, default=False)
    authorisation_required: Mapped[bool] = mapped_column(Boolean, default=False)
    result_limit: Mapped[int] = mapped_column(Integer, default=20)
    threshold: Mapped[float | None] = mapped_column(Float)
    honour_optouts: Mapped[bool] = mapped_column(Boolean, default=True)
    keep_evidence: Mapped[bool] = mapped_column(Boolean, default=False)


class SourceImage(Base):
    """One image that was read into a collection, with its provenance (file, HTTP or WARC)."""

    __tablename__ = "source_images"
    __table_args__ = (UniqueConstraint("collection_id", "content_hash"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    collection_id: Mapped[int] = mapped_column(
        ForeignKey("collections.id", ondelete="CASCADE"), index=True
    )
    content_hash: Mapped[str] = mapped_column(String(64))
    image_url: Mapped[str] = mapped_column(Text)
    page_url: Mapped[str | None] = mapped_column(Text)
    page_title: Mapped[str | None] = mapped_column(Text)
    captured_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    http_status: Mapped[int | None] = mapped_column(Integer)
    content_type: Mapped[str | None] = mapped_column(String(200))
    warc_file: Mapped[str | None] = mapped_column(Text)
    warc_record_id: Mapped[str | None] = mapped_column(String(200))
    warc_digest: Mapped[str | None] = mapped_column(String(200))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    indexed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    faces: Mapped[list[Face]] = relationship(back_populates="image", cascade="all, delete-orphan")


class Face(Base):
    """One indexed face. The embedding is kept here too: the vector index is rebuilt from it."""

    __tablename__ = "faces"

    id: Mapped[int] = mapped_column(primary_key=True)
    image_id: Mapped[int] = mapped_column(
        ForeignKey("source_images.id", ondelete="CASCADE"), index=True
    )
    collection_id: Mapped[int] = mapped_column(
        ForeignKey("collections.id", ondelete="CASCADE"), index=True
    )
    left: Mapped[int] = mapped_column(Integer)
    top: Mapped[int] = mapped_column(Integer)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    landmarks: Mapped[list[list[float]]] = mapped_column(JSON)
    detector_score: Mapped[float] = mapped_column(Float)
    quality: Mapped[float] = mapped_column(Float)
    estimated_age: Mapped[float] = mapped_column(Float)
    embedding: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    image: Mapped[SourceImage] = relationship(back_populates="faces")


class User(Base):
    """A person who acts on the system; roles say what they may do."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    password_hash: Mapped[str] = mapped_column(String(400))
    roles: Mapped[list[str]] = mapped_column(JSON, default=list)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ApiToken(Base):
    """A script's credential: only a hash of the token is stored."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class SearchRequest(Base):
    """One accountable search: who asked, why, for which collections, and what became of it."""

    __tablename__ = "search_requests"

    id: Mapped[int] = mapped_column(primary_key=True)
    requester_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    status: Mapped[str] = mapped_column(String(20), index=True)
    purpose: Mapped[str | None] = mapped_column(String(100))
    case_ref: Mapped[str | None] = mapped_column(String(200), index=True)
    justification: Mapped[str | None] = mapped_column(Text)
    collections: Mapped[list[str]] = mapped_column(JSON)
    probe_hash: Mapped[str] = mapped_column(String(64), index=True)
    probe_file: Mapped[str | None] = mapped_column(Text)
    probe_face: Mapped[int | None] = mapped_column(Integer)
    probe_box: Mapped[list[int] | None] = mapped_column(JSON)
    probe_age: Mapped[float | None] = mapped_column(Float)
    probe_embedding: Mapped[bytes | None] = mapped_column(LargeBinary)
    top_k: Mapped[int] = mapped_column(Integer, default=20)
    threshold: Mapped[float | None] = mapped_column(Float)
    refusal_code: Mapped[str | None] = mapped_column(String(40))
    reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    decision_reason: Mapped[str | None] = mapped_column(Text)
    approval_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    approval_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    ran_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    authorisation_ref: Mapped[str | None] = mapped_column(String(200))
    authorisation_status: Mapped[str | None] = mapped_column(String(20))
    authorisation_due: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    probe_deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    results: Mapped[list[SearchResult]] = relationship(
        back_populates="request", cascade="all, delete-orphan", order_by="SearchResult.rank"
    )


class SearchResult(Base):
    """One match a search returned, as it was shown (a snapshot: the face may be purged later)."""

    __tablename__ = "search_results"

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(
        ForeignKey("search_requests.id", ondelete="CASCADE"), index=True
    )
    rank: Mapped[int] = mapped_column(Integer)
    face_id: Mapped[int | None] = mapped_column(Integer, index=True)
    score: Mapped[float] = mapped_column(Float)
    collection: Mapped[str] = mapped_column(String(200))
    image_url: Mapped[str | None] = mapped_column(Text)
    page_url: Mapped[str | None] = mapped_column(Text)
    page_title: Mapped[str | None] = mapped_column(Text)
    box: Mapped[list[int] | None] = mapped_column(JSON)
    captured_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    warc_digest: Mapped[str | None] = mapped_column(String(200))
    purged_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    request: Mapped[SearchRequest] = relationship(back_populates="results")
    reviews: Mapped[list[Review]] = relationship(
        back_populates="result", cascade="all, delete-orphan"
    )


class Review(Base):
    """One person's confirm/reject decision on a result; two different confirmations confirm it."""

    __tablename__ = "reviews"
    __table_args__ = (UniqueConstraint("result_id", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    result_id: Mapped[int] = mapped_column(
        ForeignKey("search_results.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    decision: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    result: Mapped[SearchResult] = relationship(back_populates="reviews")


class Exposure(Base):
    """The register of affected people: which face was shown, by which search, to whom."""

    __tablename__ = "exposures"

    id: Mapped[int] = mapped_column(primary_key=True)
    face_id: Mapped[int | None] = mapped_column(Integer, index=True)
    result_id: Mapped[int] = mapped_column(ForeignKey("search_results.id", ondelete="CASCADE"))
    request_id: Mapped[int] = mapped_column(ForeignKey("search_requests.id", ondelete="CASCADE"))
    shown_to: Mapped[int] = mapped_column(ForeignKey("users.id"))
    shown_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class OptOut(Base):
    """A person who asked to be excluded: their template, never their photo."""

    __tablename__ = "optouts"

    id: Mapped[int] = mapped_column(primary_key=True)
    label: Mapped[str | None] = mapped_column(String(200))
    embedding: Mapped[bytes] = mapped_column(LargeBinary)
    created_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    removed_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    removed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class CrawlJob(Base):
    """A declared crawl into a collection: who started it, why, its scope and its outcome.

    The frontier and archives live in `job_dir` (see `faceledger.crawl`); this row is what
    the CLI and the web app list, and what lets a killed job be resumed by its id.
    """

    __tablename__ = "crawl_jobs"

    id: Mapped[int] = mapped_column(primary_key=True)
    collection_id: Mapped[int] = mapped_column(
        ForeignKey("collections.id", ondelete="CASCADE"), index=True
    )
    started_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    legal_basis: Mapped[str] = mapped_column(Text)
    case_ref: Mapped[str] = mapped_column(String(200))
    scope: Mapped[dict[str, object]] = mapped_column(JSON)
    job_dir: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20), index=True)
    stats: Mapped[dict[str, object] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class LedgerEntry(Base):
    """The chained header of a ledger entry; its payload lives apart so it can be erased."""

    __tablename__ = "ledger_entries"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    created_at: Mapped[str] = mapped_column(String(40))
    actor: Mapped[str | None] = mapped_column(String(200), index=True)
    action: Mapped[str] = mapped_column(String(100), index=True)
    subject: Mapped[str | None] = mapped_column(String(400))
    payload_hash: Mapped[str] = mapped_column(String(64))
    prev_hash: Mapped[str] = mapped_column(String(64))
    entry_hash: Mapped[str] = mapped_column(String(64), unique=True)


class LedgerPayload(Base):
    """An entry's payload (canonical JSON); erased by setting it to NULL, keeping the hash."""

    __tablename__ = "ledger_payloads"

    seq: Mapped[int] = mapped_column(ForeignKey("ledger_entries.seq"), primary_key=True)
    body: Mapped[str | None] = mapped_column(Text)
    erased_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class LedgerCheckpoint(Base):
    """A signed statement 'the chain up to seq ends in entry_hash' (Ed25519)."""

    __tablename__ = "ledger_checkpoints"

    id: Mapped[int] = mapped_column(primary_key=True)
    seq: Mapped[int] = mapped_column(Integer)
    entry_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[str] = mapped_column(String(40))
    key_id: Mapped[str] = mapped_column(String(64))
    signature: Mapped[str] = mapped_column(String(200))


class WatchSubject(Base):
    """A consenting person who is watched for: a template (never a photo) and the basis.

    Withdrawing consent (`watch remove`) erases the template; the row stays because alerts
    and ledger entries refer to it.
    """

    __tablename__ = "watch_subjects"

    id: Mapped[int] = mapped_column(primary_key=True)
    label: Mapped[str] = mapped_column(String(200))
    basis: Mapped[str] = mapped_column(Text)
    template: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    removed_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    removed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    removal_reason: Mapped[str | None] = mapped_column(Text)


class WatchRun(Base):
    """One watch round: a fresh crawl of a declared scope, scanned for the enrolled people.

    Its crawl folder is deleted after the scan; what stays is this row (scope and counts)
    and the alerts it raised.
    """

    __tablename__ = "watch_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    started_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    scope: Mapped[dict[str, object]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(20), index=True)
    stats: Mapped[dict[str, object] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class WatchAlert(Base):
    """A face in a crawled image that matched an enrolled person, with its capture's evidence.

    `deliveries` maps each target (webhook URL, e-mail address) to its last attempt, so a
    failed delivery is visible and can be retried; the alert itself never depends on it.
    """

    __tablename__ = "watch_alerts"

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("watch_runs.id"), index=True)
    subject_id: Mapped[int] = mapped_column(ForeignKey("watch_subjects.id"), index=True)
    score: Mapped[float] = mapped_column(Float)
    image_url: Mapped[str] = mapped_column(Text)
    page_url: Mapped[str | None] = mapped_column(Text)
    page_title: Mapped[str | None] = mapped_column(Text)
    captured_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    warc_record_id: Mapped[str | None] = mapped_column(String(200))
    warc_digest: Mapped[str | None] = mapped_column(String(200))
    content_hash: Mapped[str] = mapped_column(String(64), index=True)
    box: Mapped[list[int]] = mapped_column(JSON)
    evidence_file: Mapped[str | None] = mapped_column(Text)
    deliveries: Mapped[dict[str, dict[str, object]]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
