//! The metadata database: one code path over `sqlx::Any` for SQLite (embedded default) and
//! PostgreSQL. Both dialects accept the same statements (`$n` placeholders, `ON CONFLICT`);
//! only the schema differs (BLOB/BYTEA, AUTOINCREMENT/BIGSERIAL), so each has its own
//! migration directory, embedded at compile time.
//!
//! Every multi-row write is one transaction, so a failure never leaves half of it behind.
//!
//! Ids cross this boundary typed ([`FamilyId`], [`DeviceId`], [`EnvelopeId`], [`Role`]): they
//! are stored as their one canonical text (lower-case hex, the role's name) and parsed back
//! on the way out, so a stored value that is not a valid id is an internal error, never a
//! string that flows on.

use crate::Error;
use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{AnyPool, Row};
use std::time::Duration;
use toyseal_cloud::api::EnvelopeId;
use toyseal_core::{DeviceId, FamilyId, Role};

/// Which SQL backend a pool talks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Backend {
    Sqlite,
    Postgres,
}

/// The database handle (cheap to clone).
#[derive(Clone, Debug)]
pub(crate) struct Db {
    pool: AnyPool,
    backend: Backend,
}

/// A device's current membership in one family.
pub(crate) struct Membership {
    pub role: Role,
    pub public_key: Vec<u8>,
}

/// One stored envelope's row.
pub(crate) struct EnvelopeRow {
    pub seq: i64,
    pub id: EnvelopeId,
    pub sender: DeviceId,
    pub size: u64,
    pub roster_version: u64,
    pub received_at: u64,
    pub blob_key: String,
    /// The sender's signed sequence number (0 for rows stored before sender chains).
    pub sender_sequence: u64,
    /// Set while a guardian's soft deletion is pending (T36).
    pub deleted: Option<SoftDeletion>,
}

/// A pending soft deletion of an envelope (T36).
pub(crate) struct SoftDeletion {
    pub by: DeviceId,
    pub at: u64,
    pub erase_at: u64,
}

/// What marking an envelope soft-deleted did.
pub(crate) enum Marked {
    /// Marked now.
    Now,
    /// The envelope is gone, or already marked (a concurrent deletion): nothing changed.
    Unchanged,
    /// The deleting device has `limit` pending soft deletions made since the window began.
    LimitReached,
}

/// What inserting an envelope row did.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Inserted {
    /// The row is new.
    Created,
    /// The same envelope was stored already (an identical re-upload).
    Existed,
    /// The family was deleted (after the upload was authorized): nothing was inserted.
    FamilyDeleted,
    /// The envelope breaks its sender's chain as stored (docs/spec/envelope.md §11.4):
    /// nothing was inserted; the reason says which rule.
    ChainBroken(&'static str),
}

/// An envelope's place on its sender's chain, from its verified header.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SenderLink {
    /// The signed sender sequence (≥ 1: sequence 0 is refused before the database).
    pub sequence: u64,
    /// The envelope's header hash.
    pub header_hash: [u8; 32],
    /// The header hash of the sender's previous envelope it names.
    pub previous: [u8; 32],
}

fn hex32(h: &[u8; 32]) -> String {
    h.iter().map(|b| format!("{b:02x}")).collect()
}

/// A member as written to the `devices` table.
pub(crate) struct DeviceRow {
    pub device_id: DeviceId,
    pub public_key: Vec<u8>,
    pub role: Role,
}

/// A typed id's stored text.
fn text(id: impl std::fmt::Display) -> String {
    id.to_string()
}

/// An unsigned count or time as SQL's signed 64-bit integer (saturating: no id or size here
/// comes near 2^63).
fn int(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// A stored integer that must not be negative.
fn uint(v: i64, what: &str) -> Result<u64, Error> {
    u64::try_from(v).map_err(|_| Error::Internal(format!("stored {what} is negative")))
}

/// A stored text that must parse as `T`.
fn parse<T: std::str::FromStr>(s: &str, what: &str) -> Result<T, Error> {
    s.parse()
        .map_err(|_| Error::Internal(format!("stored {what} unreadable")))
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .is_some_and(|d| d.is_unique_violation())
}

impl Db {
    /// Connects, configures SQLite, and runs the embedded migrations.
    pub(crate) async fn connect(
        url: &str,
        timeout: Duration,
        max_connections: u32,
    ) -> Result<Self, Error> {
        install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            Backend::Postgres
        };
        let busy_ms = timeout.as_millis().min(600_000) as u64;
        let pool = AnyPoolOptions::new()
            .max_connections(max_connections.max(1))
            .acquire_timeout(timeout)
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if conn.backend_name().eq_ignore_ascii_case("sqlite") {
                        // WAL: readers never block the writer; NORMAL is durable across a
                        // process crash (T61). secure_delete overwrites deleted rows with
                        // zeros so that erased data does not linger in free pages (T15).
                        for pragma in [
                            "PRAGMA journal_mode = WAL".to_owned(),
                            "PRAGMA synchronous = NORMAL".to_owned(),
                            "PRAGMA foreign_keys = ON".to_owned(),
                            "PRAGMA secure_delete = ON".to_owned(),
                            format!("PRAGMA busy_timeout = {busy_ms}"),
                        ] {
                            sqlx::query(&pragma).execute(&mut *conn).await?;
                        }
                    }
                    Ok(())
                })
            })
            .connect(url)
            .await
            .map_err(|e| Error::Config(format!("cannot open the database: {e}")))?;
        let migrator = match backend {
            Backend::Sqlite => sqlx::migrate!("migrations/sqlite"),
            Backend::Postgres => sqlx::migrate!("migrations/postgres"),
        };
        migrator
            .run(&pool)
            .await
            .map_err(|e| Error::Config(format!("database migration failed: {e}")))?;
        Ok(Self { pool, backend })
    }

    /// Closes the pool (graceful shutdown).
    pub(crate) async fn close(&self) {
        self.pool.close().await;
    }

    /// Cheap liveness probe.
    pub(crate) async fn ping(&self) -> Result<(), Error> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    // --- registry and authorization ---

    /// The public key of a device that is a current member of at least one family.
    pub(crate) async fn registry_key(&self, device: DeviceId) -> Result<Option<Vec<u8>>, Error> {
        let row = sqlx::query(
            "SELECT public_key FROM devices WHERE device_id = $1 AND until_version IS NULL LIMIT 1",
        )
        .bind(text(device))
        .fetch_optional(&self.pool)
        .await?;
        Ok(match row {
            Some(r) => Some(r.try_get::<Vec<u8>, _>(0)?),
            None => None,
        })
    }

    /// The key of `device` as the latest roster removal recorded it (`until_version` set), and
    /// that version; for telling a removed device it was removed (auth.rs).
    pub(crate) async fn removed_key(
        &self,
        device: DeviceId,
    ) -> Result<Option<(Vec<u8>, u64)>, Error> {
        let row = sqlx::query(
            "SELECT public_key, until_version FROM devices \
             WHERE device_id = $1 AND until_version IS NOT NULL \
             ORDER BY until_version DESC LIMIT 1",
        )
        .bind(text(device))
        .fetch_optional(&self.pool)
        .await?;
        Ok(match row {
            Some(r) => Some((r.try_get(0)?, uint(r.try_get(1)?, "until_version")?)),
            None => None,
        })
    }

    /// The roster version of `family` that removed `device` with `public_key`, if one did.
    pub(crate) async fn removed_from(
        &self,
        family: FamilyId,
        device: DeviceId,
        public_key: &[u8],
    ) -> Result<Option<u64>, Error> {
        let row = sqlx::query(
            "SELECT until_version FROM devices \
             WHERE family = $1 AND device_id = $2 AND public_key = $3 \
             AND until_version IS NOT NULL ORDER BY until_version DESC LIMIT 1",
        )
        .bind(text(family))
        .bind(text(device))
        .bind(public_key.to_vec())
        .fetch_optional(&self.pool)
        .await?;
        Ok(match row {
            Some(r) => Some(uint(r.try_get(0)?, "until_version")?),
            None => None,
        })
    }

    /// The device's membership in the family's current roster.
    pub(crate) async fn membership(
        &self,
        family: FamilyId,
        device: DeviceId,
    ) -> Result<Option<Membership>, Error> {
        let row = sqlx::query(
            "SELECT role, public_key FROM devices \
             WHERE family = $1 AND device_id = $2 AND until_version IS NULL",
        )
        .bind(text(family))
        .bind(text(device))
        .fetch_optional(&self.pool)
        .await?;
        Ok(match row {
            Some(r) => Some(Membership {
                role: parse(&r.try_get::<String, _>(0)?, "role")?,
                public_key: r.try_get(1)?,
            }),
            None => None,
        })
    }

    /// Records a nonce; `false` if this device used it before (a replay, T03).
    pub(crate) async fn record_nonce(
        &self,
        device: DeviceId,
        nonce: &str,
        expires: u64,
    ) -> Result<bool, Error> {
        let r = sqlx::query("INSERT INTO nonces (device, nonce, expires) VALUES ($1, $2, $3)")
            .bind(text(device))
            .bind(nonce)
            .bind(int(expires))
            .execute(&self.pool)
            .await;
        match r {
            Ok(_) => Ok(true),
            Err(e) if is_unique_violation(&e) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Deletes nonces that expired before `now`: their requests are refused as stale anyway.
    pub(crate) async fn purge_nonces(&self, now: u64) -> Result<u64, Error> {
        let r = sqlx::query("DELETE FROM nonces WHERE expires < $1")
            .bind(int(now))
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected())
    }

    // --- families and rosters ---

    /// Creates a family from its verified version 1; `false` if the family exists.
    pub(crate) async fn create_family(
        &self,
        family: FamilyId,
        roster: &[u8],
        hash: &[u8],
        members: &[DeviceRow],
        now: u64,
    ) -> Result<bool, Error> {
        let mut tx = self.pool.begin().await?;
        let r = sqlx::query(
            "INSERT INTO families (family, current_version, created_at) VALUES ($1, 1, $2)",
        )
        .bind(text(family))
        .bind(int(now))
        .execute(&mut *tx)
        .await;
        match r {
            Ok(_) => {}
            Err(e) if is_unique_violation(&e) => return Ok(false),
            Err(e) => return Err(e.into()),
        }
        sqlx::query(
            "INSERT INTO roster_versions (family, version, bytes, hash) VALUES ($1, 1, $2, $3)",
        )
        .bind(text(family))
        .bind(roster.to_vec())
        .bind(hash.to_vec())
        .execute(&mut *tx)
        .await?;
        for m in members {
            insert_device(&mut tx, family, m, 1).await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// At most `limit` roster versions (wire bytes) after `since`, oldest first.
    pub(crate) async fn roster_page(
        &self,
        family: FamilyId,
        since: u64,
        limit: u64,
    ) -> Result<Vec<Vec<u8>>, Error> {
        let rows = sqlx::query(
            "SELECT bytes FROM roster_versions WHERE family = $1 AND version > $2 \
             ORDER BY version LIMIT $3",
        )
        .bind(text(family))
        .bind(int(since))
        .bind(int(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| r.try_get::<Vec<u8>, _>(0).map_err(Error::from))
            .collect()
    }

    /// The whole chain, version 1 first (the server's own verification).
    pub(crate) async fn roster_chain(&self, family: FamilyId) -> Result<Vec<Vec<u8>>, Error> {
        self.roster_page(family, 0, u64::MAX).await
    }

    /// Appends the verified `version` (= current + 1) and moves the device ranges; `false` if
    /// another update won the race.
    pub(crate) async fn update_roster(
        &self,
        family: FamilyId,
        version: u64,
        roster: &[u8],
        hash: &[u8],
        members: &[DeviceRow],
    ) -> Result<bool, Error> {
        let mut tx = self.pool.begin().await?;
        // Write first: on SQLite this takes the write lock before any read.
        let moved = sqlx::query(
            "UPDATE families SET current_version = $1 WHERE family = $2 AND current_version = $3",
        )
        .bind(int(version))
        .bind(text(family))
        .bind(int(version.saturating_sub(1)))
        .execute(&mut *tx)
        .await?;
        if moved.rows_affected() != 1 {
            return Ok(false);
        }
        let r = sqlx::query(
            "INSERT INTO roster_versions (family, version, bytes, hash) VALUES ($1, $2, $3, $4)",
        )
        .bind(text(family))
        .bind(int(version))
        .bind(roster.to_vec())
        .bind(hash.to_vec())
        .execute(&mut *tx)
        .await;
        match r {
            Ok(_) => {}
            Err(e) if is_unique_violation(&e) => return Ok(false),
            Err(e) => return Err(e.into()),
        }
        let current = sqlx::query(
            "SELECT device_id, public_key FROM devices WHERE family = $1 AND until_version IS NULL",
        )
        .bind(text(family))
        .fetch_all(&mut *tx)
        .await?;
        let mut kept = Vec::new();
        for row in &current {
            let id: DeviceId = parse(&row.try_get::<String, _>(0)?, "device id")?;
            let key: Vec<u8> = row.try_get(1)?;
            let stays = members
                .iter()
                .any(|m| m.device_id == id && m.public_key == key);
            if stays {
                kept.push(id);
            } else {
                sqlx::query(
                    "UPDATE devices SET until_version = $1 \
                     WHERE family = $2 AND device_id = $3 AND until_version IS NULL",
                )
                .bind(int(version))
                .bind(text(family))
                .bind(text(id))
                .execute(&mut *tx)
                .await?;
            }
        }
        for m in members.iter().filter(|m| !kept.contains(&m.device_id)) {
            insert_device(&mut tx, family, m, version).await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Deletes every row of the family (envelopes, devices, rosters, the family).
    ///
    /// The family's row lock is taken first, as [`insert_envelope`](Self::insert_envelope)
    /// does: an upload's row either commits before (and is deleted here) or finds the family
    /// gone and inserts nothing, never a row that outlives its family.
    pub(crate) async fn delete_family(&self, family: FamilyId) -> Result<(), Error> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("UPDATE families SET current_version = current_version WHERE family = $1")
            .bind(text(family))
            .execute(&mut *tx)
            .await?;
        for table in ["envelopes", "devices", "roster_versions", "families"] {
            sqlx::query(&format!("DELETE FROM {table} WHERE family = $1"))
                .bind(text(family))
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        self.flush_erasure().await;
        Ok(())
    }

    /// SQLite: moves the zeroed pages (secure_delete) from the WAL into the main file and
    /// truncates the WAL, so erased rows leave no copy in either file. Best effort: a busy
    /// database checkpoints later by itself.
    pub(crate) async fn flush_erasure(&self) {
        if self.backend == Backend::Sqlite
            && let Err(e) = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                .execute(&self.pool)
                .await
        {
            tracing::debug!(error = %e, "checkpoint after erasure deferred");
        }
    }

    // --- envelopes ---

    /// The envelope `id` of `family`, if stored.
    pub(crate) async fn envelope(
        &self,
        family: FamilyId,
        id: &EnvelopeId,
    ) -> Result<Option<EnvelopeRow>, Error> {
        let row = sqlx::query(
            "SELECT seq, id, sender, size, roster_version, received_at, blob_key, deleted_by, \
             deleted_at, erase_at, sender_sequence FROM envelopes WHERE family = $1 AND id = $2",
        )
        .bind(text(family))
        .bind(text(id))
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| envelope_row(&r)).transpose()
    }

    /// Inserts an envelope row, unless it exists already or the family was deleted since the
    /// upload was authorized (a deletion racing the upload, T15).
    ///
    /// Listings page by `seq`, so within a family `seq` order must be commit order: otherwise
    /// (PostgreSQL, where a sequence value is taken at insert time and transactions commit in
    /// any order) a reader could see seq 10 committed, hand out a cursor past it, and never
    /// list seq 9 that commits a moment later. Taking the family's row lock first (a no-op
    /// UPDATE: a row lock on PostgreSQL, the write lock on SQLite) serializes a family's
    /// inserts, so the sequence value is drawn under the lock and the row commits before the
    /// next insert of the family can draw one.
    ///
    /// Under the same lock it checks the sender's chain as stored (docs/spec/envelope.md §11.4):
    /// another envelope at this (sender, sequence); a stored predecessor (sequence − 1) whose
    /// header hash is not `previous`; a stored successor (sequence + 1) whose `previous` is not
    /// this header hash; another stored envelope naming the same `previous` (a fork).
    pub(crate) async fn insert_envelope(
        &self,
        family: FamilyId,
        row: &EnvelopeRow,
        link: &SenderLink,
    ) -> Result<Inserted, Error> {
        let mut tx = self.pool.begin().await?;
        let locked =
            sqlx::query("UPDATE families SET current_version = current_version WHERE family = $1")
                .bind(text(family))
                .execute(&mut *tx)
                .await?;
        if locked.rows_affected() == 0 {
            return Ok(Inserted::FamilyDeleted);
        }
        if let Some(refused) = chain_check(&mut tx, family, row, link).await? {
            return Ok(refused);
        }
        let (hash, previous) = (hex32(&link.header_hash), hex32(&link.previous));
        let r = sqlx::query(
            "INSERT INTO envelopes (family, id, sender, size, roster_version, received_at, \
             blob_key, sender_sequence, header_hash, previous) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(text(family))
        .bind(text(row.id))
        .bind(text(row.sender))
        .bind(int(row.size))
        .bind(int(row.roster_version))
        .bind(int(row.received_at))
        .bind(&row.blob_key)
        .bind(int(link.sequence))
        .bind(&hash)
        .bind(&previous)
        .execute(&mut *tx)
        .await;
        match r {
            Ok(_) => {
                tx.commit().await?;
                Ok(Inserted::Created)
            }
            Err(e) if is_unique_violation(&e) => Ok(Inserted::Existed),
            Err(e) => Err(e.into()),
        }
    }

    /// The sender-chain checks of [`Db::insert_envelope`], without the lock: an upload runs
    /// them before it writes anything (and the insert again under the lock). `None`: they pass.
    pub(crate) async fn sender_chain_conflict(
        &self,
        family: FamilyId,
        row: &EnvelopeRow,
        link: &SenderLink,
    ) -> Result<Option<Inserted>, Error> {
        let mut conn = self.pool.acquire().await?;
        chain_check(&mut conn, family, row, link).await
    }

    /// Whether the family exists.
    pub(crate) async fn family_exists(&self, family: FamilyId) -> Result<bool, Error> {
        let row = sqlx::query("SELECT 1 FROM families WHERE family = $1")
            .bind(text(family))
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.is_some())
    }

    /// Up to `limit` envelopes of the family after `after_seq`, oldest first.
    pub(crate) async fn list_envelopes(
        &self,
        family: FamilyId,
        after_seq: i64,
        limit: u64,
    ) -> Result<Vec<EnvelopeRow>, Error> {
        let rows = sqlx::query(
            "SELECT seq, id, sender, size, roster_version, received_at, blob_key, deleted_by, \
             deleted_at, erase_at, sender_sequence FROM envelopes \
             WHERE family = $1 AND seq > $2 AND deleted_at IS NULL ORDER BY seq LIMIT $3",
        )
        .bind(text(family))
        .bind(after_seq)
        .bind(int(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(envelope_row).collect()
    }

    /// Deletes one envelope row, and (SQLite) moves the erased pages out of the write-ahead log,
    /// as a family deletion does: the deleted row's old page copies leave no trace (T15).
    pub(crate) async fn delete_envelope(
        &self,
        family: FamilyId,
        id: &EnvelopeId,
    ) -> Result<(), Error> {
        sqlx::query("DELETE FROM envelopes WHERE family = $1 AND id = $2")
            .bind(text(family))
            .bind(text(id))
            .execute(&self.pool)
            .await?;
        self.flush_erasure().await;
        Ok(())
    }

    /// Marks the envelope soft-deleted by `by` at `at` until `erase_at`, unless `by` already
    /// has `limit` pending soft deletions made after `window_start` (in any family). Under the
    /// family's row lock, so a device's concurrent deletions in one family cannot overshoot
    /// the limit.
    pub(crate) async fn mark_deleted(
        &self,
        family: FamilyId,
        id: &EnvelopeId,
        deletion: &SoftDeletion,
        window_start: u64,
        limit: u32,
    ) -> Result<Marked, Error> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("UPDATE families SET current_version = current_version WHERE family = $1")
            .bind(text(family))
            .execute(&mut *tx)
            .await?;
        let made: i64 =
            sqlx::query("SELECT COUNT(*) FROM envelopes WHERE deleted_by = $1 AND deleted_at > $2")
                .bind(text(deletion.by))
                .bind(int(window_start))
                .fetch_one(&mut *tx)
                .await?
                .try_get(0)?;
        if made >= i64::from(limit) {
            return Ok(Marked::LimitReached);
        }
        let r = sqlx::query(
            "UPDATE envelopes SET deleted_by = $1, deleted_at = $2, erase_at = $3 \
             WHERE family = $4 AND id = $5 AND deleted_at IS NULL",
        )
        .bind(text(deletion.by))
        .bind(int(deletion.at))
        .bind(int(deletion.erase_at))
        .bind(text(family))
        .bind(text(id))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(if r.rows_affected() == 1 {
            Marked::Now
        } else {
            Marked::Unchanged
        })
    }

    /// Clears a pending soft deletion. `false` if no such envelope is stored (a restore of
    /// an envelope that is not deleted changes nothing and is `true`).
    pub(crate) async fn restore_envelope(
        &self,
        family: FamilyId,
        id: &EnvelopeId,
    ) -> Result<bool, Error> {
        let r = sqlx::query(
            "UPDATE envelopes SET deleted_by = NULL, deleted_at = NULL, erase_at = NULL \
             WHERE family = $1 AND id = $2",
        )
        .bind(text(family))
        .bind(text(id))
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Up to `limit` pending soft deletions of the family after `after_seq`, in upload order.
    pub(crate) async fn list_deletions(
        &self,
        family: FamilyId,
        after_seq: i64,
        limit: u64,
    ) -> Result<Vec<EnvelopeRow>, Error> {
        let rows = sqlx::query(
            "SELECT seq, id, sender, size, roster_version, received_at, blob_key, deleted_by, \
             deleted_at, erase_at, sender_sequence FROM envelopes \
             WHERE family = $1 AND seq > $2 AND deleted_at IS NOT NULL ORDER BY seq LIMIT $3",
        )
        .bind(text(family))
        .bind(after_seq)
        .bind(int(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(envelope_row).collect()
    }

    /// Up to `limit` soft-deleted envelopes (any family) whose `erase_at` is at or before
    /// `now`, with their family.
    pub(crate) async fn due_deletions(
        &self,
        now: u64,
        limit: u64,
    ) -> Result<Vec<(FamilyId, EnvelopeRow)>, Error> {
        let rows = sqlx::query(
            "SELECT seq, id, sender, size, roster_version, received_at, blob_key, deleted_by, \
             deleted_at, erase_at, sender_sequence, family FROM envelopes \
             WHERE erase_at IS NOT NULL AND erase_at <= $1 ORDER BY erase_at, seq LIMIT $2",
        )
        .bind(int(now))
        .bind(int(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let family = parse(&r.try_get::<String, _>(11)?, "family id")?;
                Ok((family, envelope_row(r)?))
            })
            .collect()
    }

    /// Deletes the row of a soft-deleted envelope whose `erase_at` is at or before `now`;
    /// `false` if it is no longer due (restored meanwhile, or gone).
    pub(crate) async fn delete_due_envelope(
        &self,
        family: FamilyId,
        id: &EnvelopeId,
        now: u64,
    ) -> Result<bool, Error> {
        let r = sqlx::query(
            "DELETE FROM envelopes WHERE family = $1 AND id = $2 \
             AND erase_at IS NOT NULL AND erase_at <= $3",
        )
        .bind(text(family))
        .bind(text(id))
        .bind(int(now))
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Blob keys of every envelope of the family.
    pub(crate) async fn family_blob_keys(&self, family: FamilyId) -> Result<Vec<String>, Error> {
        let rows = sqlx::query("SELECT blob_key FROM envelopes WHERE family = $1")
            .bind(text(family))
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| r.try_get::<String, _>(0).map_err(Error::from))
            .collect()
    }

    /// Whether a row points to this blob key.
    pub(crate) async fn blob_referenced(&self, key: &str) -> Result<bool, Error> {
        let row = sqlx::query("SELECT 1 FROM envelopes WHERE blob_key = $1")
            .bind(key)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.is_some())
    }
}

async fn insert_device(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    family: FamilyId,
    m: &DeviceRow,
    from_version: u64,
) -> Result<(), Error> {
    sqlx::query(
        "INSERT INTO devices (family, device_id, public_key, role, from_version, until_version) \
         VALUES ($1, $2, $3, $4, $5, NULL)",
    )
    .bind(text(family))
    .bind(text(m.device_id))
    .bind(m.public_key.clone())
    .bind(m.role.as_str())
    .bind(int(from_version))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The sender-chain rules against the sender's stored envelopes (docs/spec/envelope.md
/// §11.4): `Some(Existed)` for the same envelope, `Some(ChainBroken(why))` for a broken rule,
/// `None` when they pass.
async fn chain_check(
    conn: &mut sqlx::AnyConnection,
    family: FamilyId,
    row: &EnvelopeRow,
    link: &SenderLink,
) -> Result<Option<Inserted>, Error> {
    let (hash, previous) = (hex32(&link.header_hash), hex32(&link.previous));
    let neighbours = sqlx::query(
        "SELECT id, sender_sequence, header_hash, previous FROM envelopes \
         WHERE family = $1 AND sender = $2 AND sender_sequence > 0 \
         AND (sender_sequence BETWEEN $3 AND $4 OR previous = $5)",
    )
    .bind(text(family))
    .bind(text(row.sender))
    .bind(int(link.sequence.saturating_sub(1)))
    .bind(int(link.sequence.saturating_add(1)))
    .bind(&previous)
    .fetch_all(&mut *conn)
    .await?;
    for n in &neighbours {
        let id: String = n.try_get(0)?;
        if id == text(row.id) {
            return Ok(Some(Inserted::Existed));
        }
        let sequence = uint(n.try_get(1)?, "sender sequence")?;
        let (n_hash, n_previous): (String, String) = (n.try_get(2)?, n.try_get(3)?);
        let why = if sequence == link.sequence {
            Some("the sender already used this sequence number for another envelope")
        } else if sequence.checked_add(1) == Some(link.sequence) && n_hash != previous {
            Some("previous is not the header hash of the sender's envelope before it")
        } else if link.sequence.checked_add(1) == Some(sequence) && n_previous != hash {
            Some("the sender's next envelope does not name this one as previous")
        } else if link.previous != [0; 32] && n_previous == previous {
            Some("another envelope of the sender names the same previous one (a fork)")
        } else {
            None
        };
        if let Some(why) = why {
            return Ok(Some(Inserted::ChainBroken(why)));
        }
    }
    Ok(None)
}

fn envelope_row(r: &sqlx::any::AnyRow) -> Result<EnvelopeRow, Error> {
    Ok(EnvelopeRow {
        seq: r.try_get(0)?,
        id: parse(&r.try_get::<String, _>(1)?, "envelope id")?,
        sender: parse(&r.try_get::<String, _>(2)?, "sender")?,
        size: uint(r.try_get(3)?, "size")?,
        roster_version: uint(r.try_get(4)?, "roster version")?,
        received_at: uint(r.try_get(5)?, "time")?,
        blob_key: r.try_get(6)?,
        deleted: match (
            r.try_get::<Option<String>, _>(7)?,
            r.try_get::<Option<i64>, _>(8)?,
            r.try_get::<Option<i64>, _>(9)?,
        ) {
            (Some(by), Some(at), Some(erase_at)) => Some(SoftDeletion {
                by: parse(&by, "deleting device")?,
                at: uint(at, "deletion time")?,
                erase_at: uint(erase_at, "erasure time")?,
            }),
            (None, None, None) => None,
            _ => return Err(Error::Internal("stored soft deletion incomplete".into())),
        },
        sender_sequence: uint(r.try_get(10)?, "sender sequence")?,
    })
}
