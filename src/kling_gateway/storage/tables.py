"""The schema, written once for SQLite and PostgreSQL alike (no dialect-only types).

Times are Unix **milliseconds** in BIGINT columns: Kling speaks milliseconds, comparisons stay
integer, and no timezone conversion can drift between the two databases.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


def _limit_columns() -> list[Column[object]]:
    """Overrides of the global limits (migration 0009), on users and on keys; NULL = the default."""
    return [
        Column("max_in_flight", Integer, nullable=True),
        Column("rate_per_second", String(32), nullable=True),  # exact decimal text, as prices are
        Column("rate_burst", Integer, nullable=True),
        Column(
            "daily_spend_micro", BigInteger, nullable=True
        ),  # spend cap per UTC day; NULL = none
    ]


users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("disabled", Boolean, nullable=False, default=False),
    Column("created_at", BigInteger, nullable=False),
    # Standard Webhooks secret ("whsec_…") signing this user's callbacks; Fernet-encrypted; readable
    # and rotatable by the user. NULL until first needed.
    Column("webhook_secret_enc", Text, nullable=True),
    # Money, in micro-credits (1 credit = 1,000,000): integers are exact and compare in SQL, so
    # "enough balance?" and the debit are one compare-and-set. Never below zero by construction.
    Column("balance_micro", BigInteger, nullable=False, server_default="0"),
    Column("price_multiplier", String(16), nullable=False, server_default="1"),
    *_limit_columns(),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("user_id", Integer, ForeignKey("users.id"), nullable=False, index=True),
    Column("name", String(64), nullable=False, default=""),
    # "sk": a bearer secret, stored only as a SHA-256 hash; "aksk": a Kling-style
    # access/secret pair whose secret must stay usable to verify JWT signatures, so
    # it is stored encrypted under the master key.
    Column("kind", String(8), nullable=False),
    Column("prefix", String(24), nullable=False),
    Column("key_hash", String(64), nullable=True, unique=True),
    Column("access_key", String(64), nullable=True, unique=True),
    Column("secret_enc", Text, nullable=True),
    Column("allowed_models", Text, nullable=True),  # JSON list; NULL = every model
    Column("expires_at", BigInteger, nullable=True),
    Column("disabled", Boolean, nullable=False, default=False),
    Column("created_at", BigInteger, nullable=False),
    # Optional spending cap of this key, in micro-credits; spent_micro moves with the ledger.
    Column("quota_micro", BigInteger, nullable=True),
    Column("spent_micro", BigInteger, nullable=False, server_default="0"),
    *_limit_columns(),
    Column(
        "allowed_ips", Text, nullable=True
    ),  # JSON list of CIDRs; NULL = any address (migration 0009)
)

upstream_accounts = Table(  # a "channel": one Kling account traffic can be routed to
    "upstream_accounts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("base_url", String(255), nullable=False),
    Column("enabled", Boolean, nullable=False, default=True),
    Column("created_at", BigInteger, nullable=False),
    # Selection: the highest priority tier with a usable account wins; weights split
    # traffic inside it.
    Column("priority", Integer, nullable=False, server_default="0"),
    Column("weight", Integer, nullable=False, server_default="1"),
    # JSON list of upstream models offered; NULL = every model
    Column("models_json", Text, nullable=True),
    # JSON {upstream model: this account's model name}
    Column("model_map_json", Text, nullable=True),
    Column("caps_json", Text, nullable=True),  # JSON {model or "*": max tasks in flight}
    # Set on auth/balance refusals (seen by every node on its next reload); NULL or past = usable.
    Column("cooldown_until", BigInteger, nullable=True),
    Column("cooldown_reason", String(200), nullable=True),
    Column("probed_at", BigInteger, nullable=True),
    Column("probe_ms", Integer, nullable=True),
    Column("probe_error", String(300), nullable=True),  # NULL = the last probe answered
)

# an account's credentials (Fernet-encrypted); creates rotate over its usable keys
upstream_keys = Table(
    "upstream_keys",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("account_id", Integer, ForeignKey("upstream_accounts.id"), nullable=False, index=True),
    Column("access_key_enc", Text, nullable=True),
    Column("secret_key_enc", Text, nullable=True),
    Column("api_key_enc", Text, nullable=True),
    Column("hint", String(32), nullable=False, default=""),  # masked, printable: "ak-1…9f"
    Column("enabled", Boolean, nullable=False, default=True),
    Column("cooldown_until", BigInteger, nullable=True),
    Column("cooldown_reason", String(200), nullable=True),
    Column("created_at", BigInteger, nullable=False),
)

model_routes = Table(
    "model_routes",
    metadata,
    Column("public_name", String(64), primary_key=True),
    Column("target", String(64), nullable=False),
    Column("created_at", BigInteger, nullable=False),
)

# Tasks in flight: the predicate of the partial indexes behind the limits' counts
# (storage/limits.py) and the operator's in-flight figure (storage/upstreams.py), whose queries must
# repeat this exact text for SQLite to use the indexes. ORs, not an IN list: SQLite builds a
# temporary b-tree for a 3-value IN on every index update (migration 0007). Parenthesised: the
# queries AND it with their own conditions.
ACTIVE_PREDICATE = "(status = 'queued' OR status = 'submitted' OR status = 'processing')"
_ACTIVE = text(ACTIVE_PREDICATE)

tasks = Table(
    "tasks",
    metadata,
    Column("id", String(24), primary_key=True),  # public id: 18-digit, time-ordered
    Column("user_id", Integer, ForeignKey("users.id"), nullable=False),
    Column("key_id", Integer, ForeignKey("api_keys.id"), nullable=True),
    Column("public_model", String(64), nullable=False),
    Column("upstream_model", String(64), nullable=False),
    # queued → submitted → processing → succeed | failed; "rejected" = refused
    # upstream before it existed
    Column("status", String(16), nullable=False),
    Column("status_msg", Text, nullable=False, default=""),
    # the client's own id, never sent upstream
    Column("external_task_id", String(255), nullable=True),
    Column("request_hash", String(64), nullable=False),
    # the body forwarded upstream (minus our external id)
    Column("request_json", Text, nullable=False),
    Column("callback_url", Text, nullable=True),
    Column("mode", String(16), nullable=False),
    Column("duration", Integer, nullable=False),
    Column("sound", Boolean, nullable=False, default=False),
    Column("watermark", Boolean, nullable=False, default=False),
    Column("upstream_account_id", Integer, ForeignKey("upstream_accounts.id"), nullable=True),
    Column("upstream_task_id", String(64), nullable=True),
    Column("result_json", Text, nullable=True),
    Column("unit_deduction", String(32), nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    # NULL once terminal: the poll index stays small
    Column("next_poll_at", BigInteger, nullable=True),
    Column("poll_attempts", Integer, nullable=False, default=0),
    # A poller holds a task while it reads upstream; another worker or node skips it
    # until lease_until.
    Column("lease_until", BigInteger, nullable=True),
    Column("lease_owner", String(64), nullable=True),
    # SHA-256 of the unguessable token in the per-task URL Kling calls back (inbound callbacks).
    Column("callback_token_hash", String(64), nullable=True),
    # Upstream's own result (original Kling URLs) when the public result points at
    # our mirror; operators only.
    Column("origin_result_json", Text, nullable=True),
    # What the task holds in reserve (worst case at submit) and what it finally cost,
    # in micro-credits.
    Column("reserved_micro", BigInteger, nullable=False, server_default="0"),
    Column("charged_micro", BigInteger, nullable=True),
    # Append-only JSON list of {status, at, by}: the first entry written by the INSERT, each
    # later one by the compare-and-set that changes the status (task_sql.py). NULL on rows
    # older than migration 0011.
    Column("status_history", Text, nullable=True),
    UniqueConstraint("user_id", "external_task_id"),
    Index("ix_tasks_user_id_id", "user_id", "id"),
    Index("ix_tasks_next_poll_at", "next_poll_at"),
    # No index on (upstream_account_id, upstream_task_id): nothing looks a task up by upstream id,
    # and every create wrote it twice (migration 0008).
    # The mirror worker's queue: succeeded tasks not mirrored yet (mirror/rows.py). Partial, so it
    # holds only the few rows in flight instead of every succeeded task.
    Index(
        "ix_tasks_mirror_pending",
        "id",
        sqlite_where=text("status = 'succeed' AND origin_result_json IS NULL"),
        postgresql_where=text("status = 'succeed' AND origin_result_json IS NULL"),
    ),
    # In-flight counts per user, per key and per (upstream account, model): services/limits.py.
    Index(
        "ix_tasks_active_user_id",
        "user_id",
        "status",
        sqlite_where=_ACTIVE,
        postgresql_where=_ACTIVE,
    ),
    Index(
        "ix_tasks_active_key_id", "key_id", "status", sqlite_where=_ACTIVE, postgresql_where=_ACTIVE
    ),
    Index(
        "ix_tasks_active_upstream",
        "upstream_account_id",
        "upstream_model",
        "status",
        sqlite_where=_ACTIVE,
        postgresql_where=_ACTIVE,
    ),
)

# Outbound webhooks: one row per (task, status) event, written in the same
# transaction as the status change that caused it, so an event is neither lost nor
# duplicated; the worker delivers with retries.
webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", String(40), primary_key=True),  # the event id, sent as webhook-id
    Column("task_id", String(24), ForeignKey("tasks.id"), nullable=False),
    Column("user_id", Integer, ForeignKey("users.id"), nullable=False),
    Column("task_status", String(16), nullable=False),
    Column("url", Text, nullable=False),
    Column("payload", Text, nullable=False),  # the exact JSON body, frozen when the event happened
    Column("status", String(16), nullable=False),  # pending | delivered | failed (gave up)
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", BigInteger, nullable=True),  # NULL once delivered or given up
    Column("lease_until", BigInteger, nullable=True),
    Column("last_status_code", Integer, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Column("delivered_at", BigInteger, nullable=True),
    UniqueConstraint("task_id", "task_status"),
    Index("ix_webhook_deliveries_next_attempt_at", "next_attempt_at"),
)

webhook_attempts = Table(
    "webhook_attempts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column(
        "delivery_id", String(40), ForeignKey("webhook_deliveries.id"), nullable=False, index=True
    ),
    Column("attempted_at", BigInteger, nullable=False),
    Column("status_code", Integer, nullable=True),
    Column("error", Text, nullable=True),
    Column("latency_ms", Integer, nullable=False),
)

# Credits per second by (public model, mode, sound, voice control), exact decimal strings; "*"
# matches any mode. Operator data (file + CLI).
prices = Table(
    "prices",
    metadata,
    Column("public_model", String(64), primary_key=True),
    Column("mode", String(16), primary_key=True),
    Column("sound", Boolean, primary_key=True),
    Column("voice", Boolean, primary_key=True),
    Column("credits_per_second", String(32), nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

# Append-only money movements. A task has at most one "reserve" and one "close"
# (release or refund): the unique key turns a replayed settle or refund into a no-op.
# Credits/debits by operators have no task.
ledger_entries = Table(
    "ledger_entries",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("user_id", Integer, ForeignKey("users.id"), nullable=False),
    Column("key_id", Integer, ForeignKey("api_keys.id"), nullable=True),
    Column("task_id", String(24), ForeignKey("tasks.id"), nullable=True),
    Column("kind", String(16), nullable=False),  # reserve | close | credit | debit
    Column("reason", String(32), nullable=False),  # reserve | settle | refund | credit | debit
    Column("amount_micro", BigInteger, nullable=False),  # signed: what it did to the balance
    Column("charged_micro", BigInteger, nullable=True),  # on settle: the final price of the task
    Column("public_model", String(64), nullable=True),
    Column("note", Text, nullable=True),
    Column("created_at", BigInteger, nullable=False),
    UniqueConstraint("task_id", "kind"),
    Index("ix_ledger_entries_user_id_created_at", "user_id", "created_at"),
    Index("ix_ledger_entries_key_id_created_at", "key_id", "created_at"),  # per-key daily spend
)

# Per-key request-rate token bucket (services/limits.py): nano-tokens, refilled in SQL on each take.
rate_buckets = Table(
    "rate_buckets",
    metadata,
    Column("key_id", Integer, ForeignKey("api_keys.id"), primary_key=True, autoincrement=False),
    Column("tokens_nano", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

# The operator's console token (console/auth.py): one row per name ("operator"), SHA-256 of the
# token only. Issuing a new token replaces the row, so a lost or leaked token stops working at once.
console_tokens = Table(
    "console_tokens",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("token_hash", String(64), nullable=False),
    Column("created_at", BigInteger, nullable=False),
)

# Signed-in console sessions: the cookie's random id is stored only as its SHA-256, so a read of
# this table cannot be replayed as a cookie. csrf is the session's synchronizer token, rendered into
# forms.
console_sessions = Table(
    "console_sessions",
    metadata,
    Column("id_hash", String(64), primary_key=True),
    Column("csrf", String(64), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Index("ix_console_sessions_expires_at", "expires_at"),
)
