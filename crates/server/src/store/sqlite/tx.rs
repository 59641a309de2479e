//! The rules' storage interface ([`ReadTx`], [`WriteTx`]) on a SQLite transaction: one
//! statement per method, each prepared once per connection and then taken from rusqlite's
//! statement cache.
//!
//! Every method does its work before returning its (then ready) future: the rules run on a
//! blocking thread and are driven by [`super::run_ready`], which polls once.

use rusqlite::{Connection, OptionalExtension, params};

use image_chat_protocol::{ImageId, SubjectKind};

use crate::store::rules::tx::{
    ImageRow, NewChat, NewComment, NewEvent, ReadTx, Restrictions, SnapshotRow, StoredChat,
    StoredComment, WriteTx,
};
use crate::store::{BanEntry, ImageEntry, ImageKey, LockEntry, Page, StoreError};

/// A transaction begun on a connection (a `rusqlite::Transaction` derefs to its connection).
/// The caller begins it with the right behaviour (IMMEDIATE for writes: the write lock is
/// taken up front, which is SQLite's form of [`WriteTx::lock_image`]) and commits it.
pub(super) struct SqliteTx<'a>(pub(super) &'a Connection);

const SELECT_IMAGE: &str =
    "SELECT id, epoch, head, bytes FROM images WHERE tenant = ?1 AND kind = ?2 AND image = ?3";

impl SqliteTx<'_> {
    fn image_row(&self, key: &ImageKey) -> Result<Option<ImageRow>, StoreError> {
        Ok(self
            .0
            .prepare_cached(SELECT_IMAGE)?
            .query_row(
                params![key.tenant.as_str(), key.kind().as_str(), key.id()],
                |row| {
                    Ok(ImageRow {
                        id: row.get(0)?,
                        epoch: row.get(1)?,
                        head: row.get(2)?,
                        bytes: row.get(3)?,
                    })
                },
            )
            .optional()?)
    }

    /// Runs a write statement.
    fn execute(&self, sql: &str, params: impl rusqlite::Params) -> Result<(), StoreError> {
        self.changes(sql, params)?;
        Ok(())
    }

    /// Runs a write statement; the number of rows it changed.
    fn changes(&self, sql: &str, params: impl rusqlite::Params) -> Result<usize, StoreError> {
        Ok(self.0.prepare_cached(sql)?.execute(params)?)
    }

    /// The single value `sql` selects.
    fn value<T: rusqlite::types::FromSql>(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
    ) -> Result<Option<T>, StoreError> {
        Ok(self
            .0
            .prepare_cached(sql)?
            .query_row(params, |row| row.get(0))
            .optional()?)
    }
}

impl ReadTx for SqliteTx<'_> {
    async fn image(&mut self, key: &ImageKey) -> Result<Option<ImageRow>, StoreError> {
        self.image_row(key)
    }

    async fn oldest_event(&mut self, image: i64) -> Result<Option<u64>, StoreError> {
        // MIN over no rows is one NULL row.
        Ok(self
            .value::<Option<u64>>(
                "SELECT MIN(seq) FROM events WHERE image_row = ?1",
                params![image],
            )?
            .flatten())
    }

    async fn event_bytes_after(&mut self, image: i64, seq: u64) -> Result<u64, StoreError> {
        // Bytes, not characters: `length()` of TEXT counts characters.
        Ok(self
            .value(
                "SELECT COALESCE(SUM(length(CAST(body AS BLOB))), 0) FROM events \
                 WHERE image_row = ?1 AND seq > ?2",
                params![image, seq],
            )?
            .unwrap_or(0))
    }

    async fn events_after(
        &mut self,
        image: i64,
        seq: u64,
    ) -> Result<Vec<(u64, String)>, StoreError> {
        let mut stmt = self.0.prepare_cached(
            "SELECT seq, body FROM events WHERE image_row = ?1 AND seq > ?2 ORDER BY seq",
        )?;
        let rows = stmt.query_map(params![image, seq], |row| Ok((row.get(0)?, row.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    async fn event_by_broadcast_id(
        &mut self,
        image: i64,
        broadcast_id: &str,
    ) -> Result<Option<(u64, Vec<u8>)>, StoreError> {
        Ok(self
            .0
            .prepare_cached(
                "SELECT seq, fingerprint FROM events WHERE image_row = ?1 AND broadcast_id = ?2",
            )?
            .query_row(params![image, broadcast_id], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?)
    }

    async fn chat_author(
        &mut self,
        image: i64,
        chat_id: &str,
    ) -> Result<Option<String>, StoreError> {
        self.value(
            "SELECT author_id FROM chats WHERE image_row = ?1 AND chat_id = ?2",
            params![image, chat_id],
        )
    }

    async fn chat(&mut self, image: i64, chat_id: &str) -> Result<Option<StoredChat>, StoreError> {
        Ok(self
            .0
            .prepare_cached(
                "SELECT author_id, anchor, resolved, bytes FROM chats \
                 WHERE image_row = ?1 AND chat_id = ?2",
            )?
            .query_row(params![image, chat_id], |row| {
                Ok(StoredChat {
                    author_id: row.get(0)?,
                    anchor: row.get(1)?,
                    resolved: row.get(2)?,
                    bytes: row.get(3)?,
                })
            })
            .optional()?)
    }

    async fn comment_exists(&mut self, image: i64, comment_id: &str) -> Result<bool, StoreError> {
        Ok(self
            .value::<i64>(
                "SELECT 1 FROM comments WHERE image_row = ?1 AND comment_id = ?2",
                params![image, comment_id],
            )?
            .is_some())
    }

    async fn comment(
        &mut self,
        image: i64,
        chat_id: &str,
        comment_id: &str,
    ) -> Result<Option<StoredComment>, StoreError> {
        Ok(self
            .0
            .prepare_cached(
                "SELECT author_id, author, created_at, bytes FROM comments \
                 WHERE image_row = ?1 AND comment_id = ?2 AND chat_id = ?3",
            )?
            .query_row(params![image, comment_id, chat_id], |row| {
                Ok(StoredComment {
                    author_id: row.get(0)?,
                    author: row.get(1)?,
                    created_at: row.get(2)?,
                    bytes: row.get(3)?,
                })
            })
            .optional()?)
    }

    async fn count_chats(&mut self, image: i64) -> Result<u64, StoreError> {
        // Counted through the `chats_by_image` index.
        Ok(self
            .value(
                "SELECT COUNT(*) FROM chats WHERE image_row = ?1",
                params![image],
            )?
            .unwrap_or(0))
    }

    async fn count_comments(&mut self, image: i64, chat_id: &str) -> Result<u64, StoreError> {
        // Counted through the `comments_by_chat` index.
        Ok(self
            .value(
                "SELECT COUNT(*) FROM comments WHERE image_row = ?1 AND chat_id = ?2",
                params![image, chat_id],
            )?
            .unwrap_or(0))
    }

    async fn chat_weight(&mut self, image: i64, chat_id: &str) -> Result<u64, StoreError> {
        Ok(self
            .value(
                "SELECT c.bytes + (SELECT COALESCE(SUM(m.bytes), 0) FROM comments m \
                                   WHERE m.image_row = c.image_row AND m.chat_id = c.chat_id) \
                 FROM chats c WHERE c.image_row = ?1 AND c.chat_id = ?2",
                params![image, chat_id],
            )?
            .unwrap_or(0))
    }

    async fn snapshot_rows(&mut self, image: i64) -> Result<Vec<SnapshotRow>, StoreError> {
        let mut stmt = self.0.prepare_cached(
            "SELECT c.chat_id, c.anchor, c.resolved, m.comment_id, m.author, m.text, \
                    m.created_at, m.edited_at \
             FROM chats c JOIN comments m ON m.image_row = c.image_row AND m.chat_id = c.chat_id \
             WHERE c.image_row = ?1 \
             ORDER BY c.created_seq, m.seq",
        )?;
        let rows = stmt.query_map(params![image], |row| {
            Ok(SnapshotRow {
                chat_id: row.get(0)?,
                anchor: row.get(1)?,
                resolved: row.get(2)?,
                comment_id: row.get(3)?,
                author: row.get(4)?,
                text: row.get(5)?,
                created_at: row.get(6)?,
                edited_at: row.get(7)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    async fn tenant_bytes(&mut self, tenant: &str) -> Result<u64, StoreError> {
        Ok(self
            .value("SELECT bytes FROM usage WHERE tenant = ?1", params![tenant])?
            .unwrap_or(0))
    }

    async fn total_bytes(&mut self) -> Result<u64, StoreError> {
        // One row per tenant: a short sum.
        Ok(self
            .value("SELECT COALESCE(SUM(bytes), 0) FROM usage", [])?
            .unwrap_or(0))
    }

    async fn secret(&mut self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.value("SELECT value FROM secrets WHERE name = ?1", params![name])
    }

    async fn restrictions(
        &mut self,
        key: &ImageKey,
        user_id: &str,
    ) -> Result<Restrictions, StoreError> {
        Ok(self
            .0
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM image_locks \
                                WHERE tenant = ?1 AND kind = ?4 AND image = ?2), \
                        EXISTS (SELECT 1 FROM bans WHERE tenant = ?1 AND user_id = ?3)",
            )?
            .query_row(
                params![key.tenant.as_str(), key.id(), user_id, key.kind().as_str()],
                |row| {
                    Ok(Restrictions {
                        locked: row.get(0)?,
                        banned: row.get(1)?,
                    })
                },
            )?)
    }

    async fn locks(
        &mut self,
        tenant: &str,
        page: &Page<(u64, String)>,
    ) -> Result<Vec<LockEntry>, StoreError> {
        // Without a cursor: after a key above every real one.
        let (at, image) = page
            .after
            .clone()
            .unwrap_or((i64::MAX as u64, String::new()));
        let mut stmt = self.0.prepare_cached(
            "SELECT image, locked_at FROM image_locks \
             WHERE tenant = ?1 AND kind = 'image' AND (locked_at < ?2 OR (locked_at = ?2 AND image < ?3) OR ?4) \
             ORDER BY locked_at DESC, image DESC LIMIT ?5",
        )?;
        let rows = stmt.query_map(
            params![tenant, at, image, page.after.is_none(), page.limit],
            |row| {
                Ok(LockEntry {
                    image: ImageId::new(row.get::<_, String>(0)?),
                    locked_at: row.get(1)?,
                })
            },
        )?;
        Ok(rows.collect::<Result<_, _>>()?)
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
        let mut stmt = self.0.prepare_cached(
            "SELECT user_id, reason, banned_at FROM bans \
             WHERE tenant = ?1 AND (banned_at < ?2 OR (banned_at = ?2 AND user_id < ?3) OR ?4) \
             ORDER BY banned_at DESC, user_id DESC LIMIT ?5",
        )?;
        let rows = stmt.query_map(
            params![tenant, at, user, page.after.is_none(), page.limit],
            |row| {
                Ok(BanEntry {
                    user_id: row.get(0)?,
                    reason: row.get(1)?,
                    banned_at: row.get(2)?,
                })
            },
        )?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    async fn images(
        &mut self,
        tenant: &str,
        kind: SubjectKind,
        page: &Page<i64>,
    ) -> Result<Vec<ImageEntry<String>>, StoreError> {
        let mut stmt = self.0.prepare_cached(
            "SELECT i.id, i.image, i.bytes, \
                    (SELECT COUNT(*) FROM chats c WHERE c.image_row = i.id), \
                    (SELECT MAX(COALESCE(m.edited_at, m.created_at)) FROM comments m \
                     WHERE m.image_row = i.id), \
                    EXISTS (SELECT 1 FROM image_locks l \
                            WHERE l.tenant = i.tenant AND l.kind = i.kind \
                            AND l.image = i.image) \
             FROM images i WHERE i.tenant = ?1 AND i.kind = ?4 AND i.id < ?2 \
             ORDER BY i.id DESC LIMIT ?3",
        )?;
        let rows = stmt.query_map(
            params![
                tenant,
                page.after.unwrap_or(i64::MAX),
                page.limit,
                kind.as_str()
            ],
            |row| {
                Ok(ImageEntry {
                    row: row.get(0)?,
                    image: row.get(1)?,
                    bytes: row.get(2)?,
                    chats: row.get(3)?,
                    last_activity_at: row.get(4)?,
                    locked: row.get(5)?,
                })
            },
        )?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

impl WriteTx for SqliteTx<'_> {
    async fn lock_image(&mut self, key: &ImageKey) -> Result<Option<ImageRow>, StoreError> {
        // The IMMEDIATE transaction already holds the database's write lock.
        self.image_row(key)
    }

    async fn insert_image(
        &mut self,
        key: &ImageKey,
        epoch: u32,
    ) -> Result<Option<ImageRow>, StoreError> {
        // Under the write lock nobody else can have created it since `lock_image`.
        self.execute(
            "INSERT INTO images (tenant, kind, image, epoch, head, bytes) \
             VALUES (?1, ?2, ?3, ?4, 0, 0)",
            params![key.tenant.as_str(), key.kind().as_str(), key.id(), epoch],
        )?;
        Ok(Some(ImageRow {
            id: self.0.last_insert_rowid(),
            epoch,
            head: 0,
            bytes: 0,
        }))
    }

    async fn insert_chat(&mut self, image: i64, chat: NewChat<'_>) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO chats (image_row, chat_id, anchor, author_id, created_seq, bytes) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                image,
                chat.chat_id,
                chat.anchor,
                chat.author_id,
                chat.created_seq,
                chat.bytes
            ],
        )
    }

    async fn insert_comment(
        &mut self,
        image: i64,
        comment: NewComment<'_>,
    ) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO comments (image_row, comment_id, chat_id, seq, author_id, author, text, \
             created_at, edited_at, bytes) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            params![
                image,
                comment.comment_id,
                comment.chat_id,
                comment.seq,
                comment.author_id,
                comment.author,
                comment.text,
                comment.created_at,
                comment.edited_at,
                comment.bytes,
            ],
        )
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
            "UPDATE comments SET text = ?1, edited_at = ?2, bytes = ?3 \
             WHERE image_row = ?4 AND comment_id = ?5",
            params![text, edited_at, bytes, image, comment_id],
        )
    }

    async fn delete_comment(&mut self, image: i64, comment_id: &str) -> Result<(), StoreError> {
        self.execute(
            "DELETE FROM comments WHERE image_row = ?1 AND comment_id = ?2",
            params![image, comment_id],
        )
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
            "UPDATE chats SET anchor = ?1, resolved = ?2, bytes = ?3 \
             WHERE image_row = ?4 AND chat_id = ?5",
            params![anchor, resolved, bytes, image, chat_id],
        )
    }

    async fn delete_chat(&mut self, image: i64, chat_id: &str) -> Result<(), StoreError> {
        // The comments go with it (ON DELETE CASCADE).
        self.execute(
            "DELETE FROM chats WHERE image_row = ?1 AND chat_id = ?2",
            params![image, chat_id],
        )
    }

    async fn add_image_bytes(&mut self, image: i64, delta: i64) -> Result<(), StoreError> {
        // MAX(0, …): a total never goes negative, even over a file edited by hand.
        self.execute(
            "UPDATE images SET bytes = MAX(0, bytes + ?1) WHERE id = ?2",
            params![delta, image],
        )
    }

    async fn add_tenant_bytes(
        &mut self,
        tenant: &str,
        _image: i64,
        delta: i64,
    ) -> Result<(), StoreError> {
        // One row per tenant: SQLite runs one commit at a time anyway.
        self.execute(
            "INSERT INTO usage (tenant, bytes) VALUES (?1, MAX(0, ?2)) \
             ON CONFLICT (tenant) DO UPDATE SET bytes = MAX(0, bytes + ?2)",
            params![tenant, delta],
        )
    }

    async fn append_event(&mut self, image: i64, event: NewEvent<'_>) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO events (image_row, seq, broadcast_id, fingerprint, body) \
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                image,
                event.seq,
                event.broadcast_id,
                event.fingerprint,
                event.body
            ],
        )
    }

    async fn set_head(&mut self, image: i64, seq: u64) -> Result<(), StoreError> {
        self.execute(
            "UPDATE images SET head = ?1 WHERE id = ?2",
            params![seq, image],
        )
    }

    async fn prune_events(&mut self, image: i64, through: u64) -> Result<(), StoreError> {
        self.execute(
            "DELETE FROM events WHERE image_row = ?1 AND seq <= ?2",
            params![image, through],
        )
    }

    async fn insert_secret(&mut self, name: &str, value: &[u8]) -> Result<(), StoreError> {
        self.execute(
            "INSERT OR IGNORE INTO secrets (name, value) VALUES (?1, ?2)",
            params![name, value],
        )
    }

    async fn enqueue_webhook(
        &mut self,
        tenant: &str,
        delivery_id: &str,
        body: &str,
        now_ms: u64,
    ) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO webhook_outbox (tenant, delivery_id, body, due_ms, created_ms) \
             VALUES (?1, ?2, ?3, ?4, ?4)",
            params![tenant, delivery_id, body, now_ms],
        )
    }

    async fn insert_lock(&mut self, key: &ImageKey, now_ms: u64) -> Result<bool, StoreError> {
        Ok(self.changes(
            "INSERT OR IGNORE INTO image_locks (tenant, kind, image, locked_at) \
             VALUES (?1, ?2, ?3, ?4)",
            params![key.tenant.as_str(), key.kind().as_str(), key.id(), now_ms],
        )? > 0)
    }

    async fn delete_lock(&mut self, key: &ImageKey) -> Result<bool, StoreError> {
        Ok(self.changes(
            "DELETE FROM image_locks WHERE tenant = ?1 AND kind = ?2 AND image = ?3",
            params![key.tenant.as_str(), key.kind().as_str(), key.id()],
        )? > 0)
    }

    async fn insert_ban(
        &mut self,
        tenant: &str,
        user_id: &str,
        reason: &str,
        now_ms: u64,
    ) -> Result<bool, StoreError> {
        Ok(self.changes(
            "INSERT OR IGNORE INTO bans (tenant, user_id, reason, banned_at) \
             VALUES (?1, ?2, ?3, ?4)",
            params![tenant, user_id, reason, now_ms],
        )? > 0)
    }

    async fn delete_ban(&mut self, tenant: &str, user_id: &str) -> Result<bool, StoreError> {
        Ok(self.changes(
            "DELETE FROM bans WHERE tenant = ?1 AND user_id = ?2",
            params![tenant, user_id],
        )? > 0)
    }
}
