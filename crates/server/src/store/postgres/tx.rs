//! The rules' storage interface ([`ReadTx`], [`WriteTx`]) on a PostgreSQL transaction: one
//! statement per method, prepared once per connection (deadpool's statement cache).
//!
//! [`WriteTx::lock_image`] is `SELECT … FOR UPDATE` on the image's row: a second transaction
//! (from this server or another) committing on the same image waits there until the first
//! has committed, then reads the head the first wrote. That row lock is what keeps each
//! image's `seq` gap-free and totally ordered across servers. Creating the row races with
//! other servers through `INSERT … ON CONFLICT DO NOTHING`, which waits for a concurrent
//! insert of the same image to commit and then reports "exists" (the rules lock it then).
//!
//! A tenant's stored bytes are spread over [`USAGE_SHARDS`] rows of `usage`, by image, so that
//! commits of one tenant on different images do not queue on one row.
//!
//! PostgreSQL has no unsigned integers: values are `BIGINT` (checked `>= 0` by the schema) and
//! converted here; a value that does not convert is reported as corruption.

use deadpool_postgres::Transaction;
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use crate::store::rules::corrupt;
use image_chat_protocol::{ImageId, SubjectKind};

use crate::store::rules::tx::{
    ImageRow, NewChat, NewComment, NewEvent, ReadTx, Restrictions, SnapshotRow, StoredChat,
    StoredComment, WriteTx,
};
use crate::store::{BanEntry, ImageEntry, ImageKey, LockEntry, Page, StoreError};

/// A transaction begun on a pooled connection. The caller begins it (READ COMMITTED for
/// commits, REPEATABLE READ READ ONLY for reads: one consistent state) and commits it.
pub(super) struct PgTx<'a, 'c>(pub(super) &'a Transaction<'c>);

/// A stored non-negative `BIGINT` as `u64`.
pub(super) fn unsigned(what: &str, value: i64) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| corrupt(what, format!("negative value {value}")))
}

/// A `u64` for a `BIGINT` column (every value the rules store is far below `i64::MAX`).
pub(super) fn signed(what: &str, value: u64) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| StoreError::Backend(format!("{what} {value} is too large")))
}

/// Rows a tenant's byte total is spread over (see [`usage_shard`]).
const USAGE_SHARDS: i64 = 16;

/// The `usage` row of a tenant that holds `image`'s bytes. A tenant's total is the sum of its
/// rows; spreading it keeps commits on different images from waiting for one row (each
/// commit updates its row until it ends). An image always maps to the same row, so its
/// removals subtract from where its additions went.
fn usage_shard(image: i64) -> i16 {
    // In 0..16: the cast cannot truncate.
    image.rem_euclid(USAGE_SHARDS) as i16
}

fn image_row(row: &Row) -> Result<ImageRow, StoreError> {
    let epoch: i64 = row.try_get(1)?;
    Ok(ImageRow {
        id: row.try_get(0)?,
        epoch: u32::try_from(epoch).map_err(|_| corrupt("image epoch", epoch))?,
        head: unsigned("image head", row.try_get(2)?)?,
        bytes: unsigned("image bytes", row.try_get(3)?)?,
    })
}

impl PgTx<'_, '_> {
    async fn query_opt(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>, StoreError> {
        let statement = self.0.prepare_cached(sql).await?;
        Ok(self.0.query_opt(&statement, params).await?)
    }

    async fn query(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, StoreError> {
        let statement = self.0.prepare_cached(sql).await?;
        Ok(self.0.query(&statement, params).await?)
    }

    async fn execute(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<(), StoreError> {
        self.changes(sql, params).await?;
        Ok(())
    }

    /// Runs a write statement; the number of rows it changed.
    async fn changes(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<u64, StoreError> {
        let statement = self.0.prepare_cached(sql).await?;
        Ok(self.0.execute(&statement, params).await?)
    }

    /// The one non-negative `BIGINT` a statement that always returns one row selects.
    async fn count(
        &self,
        what: &str,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<u64, StoreError> {
        let statement = self.0.prepare_cached(sql).await?;
        let row = self.0.query_one(&statement, params).await?;
        unsigned(what, row.try_get(0)?)
    }
}

impl ReadTx for PgTx<'_, '_> {
    async fn image(&mut self, key: &ImageKey) -> Result<Option<ImageRow>, StoreError> {
        self.query_opt(
            "SELECT id, epoch, head, bytes FROM images \
             WHERE tenant = $1 AND kind = $2 AND image = $3",
            &[&key.tenant.as_str(), &key.kind().as_str(), &key.id()],
        )
        .await?
        .as_ref()
        .map(image_row)
        .transpose()
    }

    async fn oldest_event(&mut self, image: i64) -> Result<Option<u64>, StoreError> {
        let row = self
            .query_opt(
                "SELECT MIN(seq) FROM events WHERE image_row = $1",
                &[&image],
            )
            .await?;
        match row {
            Some(row) => row
                .try_get::<_, Option<i64>>(0)?
                .map(|seq| unsigned("event seq", seq))
                .transpose(),
            None => Ok(None),
        }
    }

    async fn event_bytes_after(&mut self, image: i64, seq: u64) -> Result<u64, StoreError> {
        self.count(
            "event bytes",
            "SELECT COALESCE(SUM(octet_length(body)), 0)::BIGINT FROM events \
             WHERE image_row = $1 AND seq > $2",
            &[&image, &signed("seq", seq)?],
        )
        .await
    }

    async fn events_after(
        &mut self,
        image: i64,
        seq: u64,
    ) -> Result<Vec<(u64, String)>, StoreError> {
        self.query(
            "SELECT seq, body FROM events WHERE image_row = $1 AND seq > $2 ORDER BY seq",
            &[&image, &signed("seq", seq)?],
        )
        .await?
        .iter()
        .map(|row| Ok((unsigned("event seq", row.try_get(0)?)?, row.try_get(1)?)))
        .collect()
    }

    async fn event_by_broadcast_id(
        &mut self,
        image: i64,
        broadcast_id: &str,
    ) -> Result<Option<(u64, Vec<u8>)>, StoreError> {
        self.query_opt(
            "SELECT seq, fingerprint FROM events WHERE image_row = $1 AND broadcast_id = $2",
            &[&image, &broadcast_id],
        )
        .await?
        .map(|row| Ok((unsigned("event seq", row.try_get(0)?)?, row.try_get(1)?)))
        .transpose()
    }

    async fn chat_author(
        &mut self,
        image: i64,
        chat_id: &str,
    ) -> Result<Option<String>, StoreError> {
        self.query_opt(
            "SELECT author_id FROM chats WHERE image_row = $1 AND chat_id = $2",
            &[&image, &chat_id],
        )
        .await?
        .map(|row| Ok(row.try_get(0)?))
        .transpose()
    }

    async fn comment_exists(&mut self, image: i64, comment_id: &str) -> Result<bool, StoreError> {
        Ok(self
            .query_opt(
                "SELECT 1 FROM comments WHERE image_row = $1 AND comment_id = $2",
                &[&image, &comment_id],
            )
            .await?
            .is_some())
    }

    async fn chat(&mut self, image: i64, chat_id: &str) -> Result<Option<StoredChat>, StoreError> {
        self.query_opt(
            "SELECT author_id, anchor, resolved, bytes FROM chats \
             WHERE image_row = $1 AND chat_id = $2",
            &[&image, &chat_id],
        )
        .await?
        .map(|row| {
            Ok(StoredChat {
                author_id: row.try_get(0)?,
                anchor: row.try_get(1)?,
                resolved: row.try_get(2)?,
                bytes: unsigned("chat bytes", row.try_get(3)?)?,
            })
        })
        .transpose()
    }

    async fn comment(
        &mut self,
        image: i64,
        chat_id: &str,
        comment_id: &str,
    ) -> Result<Option<StoredComment>, StoreError> {
        self.query_opt(
            "SELECT author_id, author, created_at, bytes FROM comments \
             WHERE image_row = $1 AND comment_id = $2 AND chat_id = $3",
            &[&image, &comment_id, &chat_id],
        )
        .await?
        .map(|row| {
            Ok(StoredComment {
                author_id: row.try_get(0)?,
                author: row.try_get(1)?,
                created_at: unsigned("comment time", row.try_get(2)?)?,
                bytes: unsigned("comment bytes", row.try_get(3)?)?,
            })
        })
        .transpose()
    }

    async fn count_chats(&mut self, image: i64) -> Result<u64, StoreError> {
        self.count(
            "chat count",
            "SELECT COUNT(*) FROM chats WHERE image_row = $1",
            &[&image],
        )
        .await
    }

    async fn count_comments(&mut self, image: i64, chat_id: &str) -> Result<u64, StoreError> {
        self.count(
            "comment count",
            "SELECT COUNT(*) FROM comments WHERE image_row = $1 AND chat_id = $2",
            &[&image, &chat_id],
        )
        .await
    }

    async fn chat_weight(&mut self, image: i64, chat_id: &str) -> Result<u64, StoreError> {
        self.count(
            "chat bytes",
            "SELECT COALESCE((SELECT bytes FROM chats WHERE image_row = $1 AND chat_id = $2), 0) \
                  + COALESCE((SELECT SUM(bytes) FROM comments \
                              WHERE image_row = $1 AND chat_id = $2), 0)::BIGINT",
            &[&image, &chat_id],
        )
        .await
    }

    async fn snapshot_rows(&mut self, image: i64) -> Result<Vec<SnapshotRow>, StoreError> {
        self.query(
            "SELECT c.chat_id, c.anchor, c.resolved, m.comment_id, m.author, m.text, \
                    m.created_at, m.edited_at \
             FROM chats c JOIN comments m ON m.image_row = c.image_row AND m.chat_id = c.chat_id \
             WHERE c.image_row = $1 \
             ORDER BY c.created_seq, m.seq",
            &[&image],
        )
        .await?
        .iter()
        .map(|row| {
            Ok(SnapshotRow {
                chat_id: row.try_get(0)?,
                anchor: row.try_get(1)?,
                resolved: row.try_get(2)?,
                comment_id: row.try_get(3)?,
                author: row.try_get(4)?,
                text: row.try_get(5)?,
                created_at: unsigned("comment time", row.try_get(6)?)?,
                edited_at: row
                    .try_get::<_, Option<i64>>(7)?
                    .map(|t| unsigned("comment edit time", t))
                    .transpose()?,
            })
        })
        .collect()
    }

    async fn tenant_bytes(&mut self, tenant: &str) -> Result<u64, StoreError> {
        self.count(
            "tenant bytes",
            "SELECT COALESCE(SUM(bytes), 0)::BIGINT FROM usage WHERE tenant = $1",
            &[&tenant],
        )
        .await
    }

    async fn total_bytes(&mut self) -> Result<u64, StoreError> {
        // A few rows per tenant: a short sum.
        self.count(
            "total bytes",
            "SELECT COALESCE(SUM(bytes), 0)::BIGINT FROM usage",
            &[],
        )
        .await
    }

    async fn secret(&mut self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.query_opt("SELECT value FROM secrets WHERE name = $1", &[&name])
            .await?
            .map(|row| Ok(row.try_get(0)?))
            .transpose()
    }

    async fn restrictions(
        &mut self,
        key: &ImageKey,
        user_id: &str,
    ) -> Result<Restrictions, StoreError> {
        let statement = self
            .0
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM image_locks \
                                WHERE tenant = $1 AND kind = $4 AND image = $2), \
                        EXISTS (SELECT 1 FROM bans WHERE tenant = $1 AND user_id = $3)",
            )
            .await?;
        let row = self
            .0
            .query_one(
                &statement,
                &[
                    &key.tenant.as_str(),
                    &key.id(),
                    &user_id,
                    &key.kind().as_str(),
                ],
            )
            .await?;
        Ok(Restrictions {
            locked: row.try_get(0)?,
            banned: row.try_get(1)?,
        })
    }

    async fn locks(
        &mut self,
        tenant: &str,
        page: &Page<(u64, String)>,
    ) -> Result<Vec<LockEntry>, StoreError> {
        let (at, image) = page
            .after
            .clone()
            .unwrap_or((i64::MAX as u64, String::new()));
        let rows = self
            .query(
                "SELECT image, locked_at FROM image_locks \
                 WHERE tenant = $1 AND kind = 'image' AND (locked_at < $2 OR (locked_at = $2 AND image < $3) OR $4) \
                 ORDER BY locked_at DESC, image DESC LIMIT $5",
                &[
                    &tenant,
                    &signed("cursor", at)?,
                    &image,
                    &page.after.is_none(),
                    &i64::from(page.limit),
                ],
            )
            .await?;
        rows.iter()
            .map(|row| {
                Ok(LockEntry {
                    image: ImageId::new(row.try_get::<_, String>(0)?),
                    locked_at: unsigned("locked_at", row.try_get(1)?)?,
                })
            })
            .collect()
    }

    async fn bans(
        &mut self,
        tenant: &str,
        page: &Page<(u64, String)>,
    ) -> Result<Vec<BanEntry>, StoreError> {
        let (at, user) = page
            .after
            .clone()
            .unwrap_or((i64::MAX as u64, String::new()));
        let rows = self
            .query(
                "SELECT user_id, reason, banned_at FROM bans \
                 WHERE tenant = $1 AND (banned_at < $2 OR (banned_at = $2 AND user_id < $3) OR $4) \
                 ORDER BY banned_at DESC, user_id DESC LIMIT $5",
                &[
                    &tenant,
                    &signed("cursor", at)?,
                    &user,
                    &page.after.is_none(),
                    &i64::from(page.limit),
                ],
            )
            .await?;
        rows.iter()
            .map(|row| {
                Ok(BanEntry {
                    user_id: row.try_get(0)?,
                    reason: row.try_get(1)?,
                    banned_at: unsigned("banned_at", row.try_get(2)?)?,
                })
            })
            .collect()
    }

    async fn images(
        &mut self,
        tenant: &str,
        kind: SubjectKind,
        page: &Page<i64>,
    ) -> Result<Vec<ImageEntry<String>>, StoreError> {
        let rows = self
            .query(
                "SELECT i.id, i.image, i.bytes, \
                        (SELECT COUNT(*) FROM chats c WHERE c.image_row = i.id), \
                        (SELECT MAX(COALESCE(m.edited_at, m.created_at)) FROM comments m \
                         WHERE m.image_row = i.id), \
                        EXISTS (SELECT 1 FROM image_locks l \
                                WHERE l.tenant = i.tenant AND l.kind = i.kind \
                                AND l.image = i.image) \
                 FROM images i WHERE i.tenant = $1 AND i.kind = $4 AND i.id < $2 \
                 ORDER BY i.id DESC LIMIT $3",
                &[
                    &tenant,
                    &page.after.unwrap_or(i64::MAX),
                    &i64::from(page.limit),
                    &kind.as_str(),
                ],
            )
            .await?;
        rows.iter()
            .map(|row| {
                Ok(ImageEntry {
                    row: row.try_get(0)?,
                    image: row.try_get(1)?,
                    bytes: unsigned("image bytes", row.try_get(2)?)?,
                    chats: unsigned("chat count", row.try_get(3)?)?,
                    last_activity_at: row
                        .try_get::<_, Option<i64>>(4)?
                        .map(|at| unsigned("comment time", at))
                        .transpose()?,
                    locked: row.try_get(5)?,
                })
            })
            .collect()
    }
}

impl WriteTx for PgTx<'_, '_> {
    async fn lock_image(&mut self, key: &ImageKey) -> Result<Option<ImageRow>, StoreError> {
        self.query_opt(
            "SELECT id, epoch, head, bytes FROM images \
             WHERE tenant = $1 AND kind = $2 AND image = $3 FOR UPDATE",
            &[&key.tenant.as_str(), &key.kind().as_str(), &key.id()],
        )
        .await?
        .as_ref()
        .map(image_row)
        .transpose()
    }

    async fn insert_image(
        &mut self,
        key: &ImageKey,
        epoch: u32,
    ) -> Result<Option<ImageRow>, StoreError> {
        self.query_opt(
            "INSERT INTO images (tenant, kind, image, epoch, head, bytes) \
             VALUES ($1, $2, $3, $4, 0, 0) \
             ON CONFLICT (tenant, kind, image) DO NOTHING \
             RETURNING id, epoch, head, bytes",
            &[
                &key.tenant.as_str(),
                &key.kind().as_str(),
                &key.id(),
                &i64::from(epoch),
            ],
        )
        .await?
        .as_ref()
        .map(image_row)
        .transpose()
    }

    async fn insert_chat(&mut self, image: i64, chat: NewChat<'_>) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO chats (image_row, chat_id, anchor, author_id, created_seq, bytes) \
             VALUES ($1, $2, $3, $4, $5, $6)",
            &[
                &image,
                &chat.chat_id,
                &chat.anchor,
                &chat.author_id,
                &signed("seq", chat.created_seq)?,
                &signed("bytes", chat.bytes)?,
            ],
        )
        .await
    }

    async fn insert_comment(
        &mut self,
        image: i64,
        comment: NewComment<'_>,
    ) -> Result<(), StoreError> {
        let edited_at = comment.edited_at.map(|t| signed("time", t)).transpose()?;
        self.execute(
            "INSERT INTO comments (image_row, comment_id, chat_id, seq, author_id, author, text, \
             created_at, edited_at, bytes) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            &[
                &image,
                &comment.comment_id,
                &comment.chat_id,
                &signed("seq", comment.seq)?,
                &comment.author_id,
                &comment.author,
                &comment.text,
                &signed("time", comment.created_at)?,
                &edited_at,
                &signed("bytes", comment.bytes)?,
            ],
        )
        .await
    }

    async fn update_comment(
        &mut self,
        image: i64,
        comment_id: &str,
        text: &str,
        edited_at: u64,
        bytes: u64,
    ) -> Result<(), StoreError> {
        self.execute(
            "UPDATE comments SET text = $1, edited_at = $2, bytes = $3 \
             WHERE image_row = $4 AND comment_id = $5",
            &[
                &text,
                &signed("time", edited_at)?,
                &signed("bytes", bytes)?,
                &image,
                &comment_id,
            ],
        )
        .await
    }

    async fn delete_comment(&mut self, image: i64, comment_id: &str) -> Result<(), StoreError> {
        self.execute(
            "DELETE FROM comments WHERE image_row = $1 AND comment_id = $2",
            &[&image, &comment_id],
        )
        .await
    }

    async fn update_chat(
        &mut self,
        image: i64,
        chat_id: &str,
        anchor: &str,
        resolved: bool,
        bytes: u64,
    ) -> Result<(), StoreError> {
        self.execute(
            "UPDATE chats SET anchor = $1, resolved = $2, bytes = $3 \
             WHERE image_row = $4 AND chat_id = $5",
            &[
                &anchor,
                &resolved,
                &signed("bytes", bytes)?,
                &image,
                &chat_id,
            ],
        )
        .await
    }

    async fn delete_chat(&mut self, image: i64, chat_id: &str) -> Result<(), StoreError> {
        // The comments go with it (ON DELETE CASCADE).
        self.execute(
            "DELETE FROM chats WHERE image_row = $1 AND chat_id = $2",
            &[&image, &chat_id],
        )
        .await
    }

    async fn add_image_bytes(&mut self, image: i64, delta: i64) -> Result<(), StoreError> {
        // GREATEST(0, …): a total never goes negative, even over rows edited by hand.
        self.execute(
            "UPDATE images SET bytes = GREATEST(0, bytes + $1::BIGINT) WHERE id = $2",
            &[&delta, &image],
        )
        .await
    }

    async fn add_tenant_bytes(
        &mut self,
        tenant: &str,
        image: i64,
        delta: i64,
    ) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO usage (tenant, shard, bytes) VALUES ($1, $2, GREATEST(0, $3::BIGINT)) \
             ON CONFLICT (tenant, shard) \
             DO UPDATE SET bytes = GREATEST(0, usage.bytes + $3::BIGINT)",
            &[&tenant, &usage_shard(image), &delta],
        )
        .await
    }

    async fn append_event(&mut self, image: i64, event: NewEvent<'_>) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO events (image_row, seq, broadcast_id, fingerprint, body) \
             VALUES ($1, $2, $3, $4, $5)",
            &[
                &image,
                &signed("seq", event.seq)?,
                &event.broadcast_id,
                &event.fingerprint,
                &event.body,
            ],
        )
        .await
    }

    async fn set_head(&mut self, image: i64, seq: u64) -> Result<(), StoreError> {
        self.execute(
            "UPDATE images SET head = $1 WHERE id = $2",
            &[&signed("seq", seq)?, &image],
        )
        .await
    }

    async fn prune_events(&mut self, image: i64, through: u64) -> Result<(), StoreError> {
        self.execute(
            "DELETE FROM events WHERE image_row = $1 AND seq <= $2",
            &[&image, &signed("seq", through)?],
        )
        .await
    }

    async fn insert_secret(&mut self, name: &str, value: &[u8]) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
            &[&name, &value],
        )
        .await
    }

    async fn enqueue_webhook(
        &mut self,
        tenant: &str,
        delivery_id: &str,
        body: &str,
        now_ms: u64,
    ) -> Result<(), StoreError> {
        let now = signed("now", now_ms)?;
        self.execute(
            "INSERT INTO webhook_outbox (tenant, delivery_id, body, due_ms, created_ms) \
             VALUES ($1, $2, $3, $4, $4)",
            &[&tenant, &delivery_id, &body, &now],
        )
        .await
    }

    async fn insert_lock(&mut self, key: &ImageKey, now_ms: u64) -> Result<bool, StoreError> {
        Ok(self
            .changes(
                "INSERT INTO image_locks (tenant, kind, image, locked_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (tenant, kind, image) DO NOTHING",
                &[
                    &key.tenant.as_str(),
                    &key.kind().as_str(),
                    &key.id(),
                    &signed("time", now_ms)?,
                ],
            )
            .await?
            > 0)
    }

    async fn delete_lock(&mut self, key: &ImageKey) -> Result<bool, StoreError> {
        Ok(self
            .changes(
                "DELETE FROM image_locks WHERE tenant = $1 AND kind = $2 AND image = $3",
                &[&key.tenant.as_str(), &key.kind().as_str(), &key.id()],
            )
            .await?
            > 0)
    }

    async fn insert_ban(
        &mut self,
        tenant: &str,
        user_id: &str,
        reason: &str,
        now_ms: u64,
    ) -> Result<bool, StoreError> {
        Ok(self
            .changes(
                "INSERT INTO bans (tenant, user_id, reason, banned_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (tenant, user_id) DO NOTHING",
                &[&tenant, &user_id, &reason, &signed("time", now_ms)?],
            )
            .await?
            > 0)
    }

    async fn delete_ban(&mut self, tenant: &str, user_id: &str) -> Result<bool, StoreError> {
        Ok(self
            .changes(
                "DELETE FROM bans WHERE tenant = $1 AND user_id = $2",
                &[&tenant, &user_id],
            )
            .await?
            > 0)
    }
}
