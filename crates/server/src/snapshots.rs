//! Each image's snapshot, encoded once per position and shared by every reader.
//!
//! A `welcome` with a snapshot and `GET …/snapshot` both carry an image's whole state, up to the
//! image's byte limit. Reading and encoding it for each of a hundred viewers joining at once
//! (or a hundred GETs) multiplied the same work and the same memory a hundred times. Here the
//! JSON is made once per `(image, epoch, seq)` and handed out as shared bytes:
//!
//! - a reader asks the store where the image's log stands (one small indexed read) and takes
//!   the cached JSON when it was made at exactly that position;
//! - otherwise it takes the image's fill lock (striped, like the ordering locks), checks again
//!   (another reader may have filled it meanwhile), and only then reads and encodes the snapshot.
//!   Concurrent readers of one stale image therefore cause one store read, not one each, and at
//!   most [`FILL_STRIPES`] snapshots are being read at once;
//! - the cache holds at most a byte budget of JSON; past it, the least recently used images
//!   are dropped (they are read again when next asked for).
//!
//! A reader may receive a snapshot newer than the position it first saw (a commit landed in
//! between); that is fine for both callers, which subscribe before reading and skip what the
//! snapshot covers.

use std::collections::HashMap;
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use image_chat_protocol::{Position, Snapshot};

use crate::store::{ImageKey, Store, StoreError};

/// Default byte budget of a [`SnapshotCache`]: a few dozen large images, or thousands of small
/// ones.
pub const DEFAULT_CACHE_BYTES: usize = 64 * 1024 * 1024;

/// Number of fill locks (see the module doc).
const FILL_STRIPES: usize = 16;

/// An image's snapshot as shared JSON (`{"chats":[…]}`) and the position it reflects.
#[derive(Clone, Debug)]
pub struct EncodedSnapshot {
    /// Position the snapshot reflects.
    pub position: Position,
    /// The encoded [`image_chat_protocol::Snapshot`].
    pub json: Arc<str>,
}

struct Entry {
    snapshot: EncodedSnapshot,
    /// Tick of the last use, for eviction.
    used: u64,
}

#[derive(Default)]
struct Entries {
    map: HashMap<ImageKey, Entry>,
    bytes: usize,
    tick: u64,
}

/// See the module doc.
pub struct SnapshotCache {
    entries: Mutex<Entries>,
    /// Snapshots read and encoded so far (for tests and metrics).
    fills: AtomicU64,
    fill: Vec<tokio::sync::Mutex<()>>,
    budget: usize,
}

impl Default for SnapshotCache {
    fn default() -> Self {
        Self::new(DEFAULT_CACHE_BYTES)
    }
}

impl SnapshotCache {
    /// A cache holding at most `budget` bytes of JSON (a single larger snapshot is still
    /// handed out, just not kept).
    pub fn new(budget: usize) -> Self {
        Self {
            entries: Mutex::default(),
            fills: AtomicU64::new(0),
            fill: (0..FILL_STRIPES)
                .map(|_| tokio::sync::Mutex::new(()))
                .collect(),
            budget,
        }
    }

    /// The snapshot of `image` at its current position (or later), from the cache when it is
    /// current there, else read from `store` once for every concurrent caller.
    pub async fn get(
        &self,
        store: &dyn Store,
        image: &ImageKey,
    ) -> Result<EncodedSnapshot, StoreError> {
        self.get_viewed(store, image, |_| {}).await
    }

    /// Like [`SnapshotCache::get`], with `view` applied to a snapshot before it is encoded (e.g.
    /// author ids replaced for anonymous readers). One cache holds one view: pass the same
    /// `view` on every call.
    pub async fn get_viewed(
        &self,
        store: &dyn Store,
        image: &ImageKey,
        view: impl FnOnce(&mut Snapshot),
    ) -> Result<EncodedSnapshot, StoreError> {
        let position = store.position(image).await?;
        if let Some(hit) = self.lookup(image, position) {
            return Ok(hit);
        }
        let _filling = self.fill[stripe(image)].lock().await;
        // Filled by the caller we waited for? The position may have moved on meanwhile: then
        // the cached copy is older than what this caller saw, and is not good enough.
        if let Some(hit) = self.lookup(image, position) {
            return Ok(hit);
        }
        let (position, mut snapshot) = store.snapshot(image).await?;
        view(&mut snapshot);
        self.fills.fetch_add(1, Ordering::Relaxed);
        // Plain derived structs: encoding cannot fail.
        let json: Arc<str> = serde_json::to_string(&snapshot).unwrap_or_default().into();
        let encoded = EncodedSnapshot { position, json };
        self.insert(image, encoded.clone());
        Ok(encoded)
    }

    /// How many snapshots were read from the store and encoded (for tests and metrics): once
    /// per image and position while the cache keeps it.
    pub fn fills(&self) -> u64 {
        self.fills.load(Ordering::Relaxed)
    }

    /// Bytes of JSON held (for tests and metrics).
    pub fn bytes(&self) -> usize {
        self.lock().bytes
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        // Every critical section below leaves the map consistent; a panic cannot break it.
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The cached snapshot of `image` if it reflects `position` or a later one of the same log.
    fn lookup(&self, image: &ImageKey, position: Position) -> Option<EncodedSnapshot> {
        let mut entries = self.lock();
        entries.tick += 1;
        let tick = entries.tick;
        let entry = entries.map.get_mut(image)?;
        let cached = entry.snapshot.position;
        if cached.epoch != position.epoch || cached.seq < position.seq {
            return None;
        }
        entry.used = tick;
        Some(entry.snapshot.clone())
    }

    fn insert(&self, image: &ImageKey, snapshot: EncodedSnapshot) {
        let size = snapshot.json.len();
        let mut entries = self.lock();
        if let Some(old) = entries.map.remove(image) {
            entries.bytes -= old.snapshot.json.len();
        }
        if size > self.budget {
            return;
        }
        // Least recently used first. A scan: evictions are rare and the map is small (the
        // budget divided by the size of the snapshots worth caching).
        while entries.bytes + size > self.budget {
            let Some(oldest) = entries
                .map
                .iter()
                .min_by_key(|(_, e)| e.used)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            if let Some(old) = entries.map.remove(&oldest) {
                entries.bytes -= old.snapshot.json.len();
            }
        }
        entries.tick += 1;
        let used = entries.tick;
        entries.bytes += size;
        entries.map.insert(image.clone(), Entry { snapshot, used });
    }
}

fn stripe(image: &ImageKey) -> usize {
    let mut hasher = DefaultHasher::new();
    image.hash(&mut hasher);
    // Truncation is fine: only the remainder matters.
    (hasher.finish() % FILL_STRIPES as u64) as usize
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use async_trait::async_trait;
    use image_chat_protocol::{Event, ImageId, Op, TenantId, User};

    use super::*;
    use crate::store::{
        BanEntry, CatchUp, Commit, CommitLimits, ImageEntry, LockEntry, Page, PageEntry, Usage,
    };

    /// A store whose position the test sets, counting snapshot reads.
    #[derive(Default)]
    struct Counting {
        seq: AtomicUsize,
        reads: AtomicUsize,
    }

    #[async_trait]
    impl Store for Counting {
        async fn commit_limited(
            &self,
            _: &ImageKey,
            _: &User,
            _: &Op,
            _: u64,
            _: CommitLimits,
        ) -> Result<Commit, StoreError> {
            Err(StoreError::Backend("read-only test store".into()))
        }
        async fn catch_up(&self, _: &ImageKey, _: Option<Position>) -> Result<CatchUp, StoreError> {
            Err(StoreError::Backend("unused".into()))
        }
        async fn snapshot(&self, _: &ImageKey) -> Result<(Position, Snapshot), StoreError> {
            self.reads.fetch_add(1, Ordering::SeqCst);
            // Readers pile up behind the fill lock while this one "reads".
            tokio::task::yield_now().await;
            Ok((self.position_now(), Snapshot::default()))
        }
        async fn position(&self, _: &ImageKey) -> Result<Position, StoreError> {
            Ok(self.position_now())
        }
        async fn missed_events(
            &self,
            _: &ImageKey,
            _: Option<Position>,
        ) -> Result<Option<(Position, Vec<Event>)>, StoreError> {
            Ok(None)
        }
        async fn usage(&self, _: &ImageKey) -> Result<Usage, StoreError> {
            Ok(Usage::default())
        }
        async fn secret(&self, _: &str) -> Result<[u8; 32], StoreError> {
            Ok([0; 32])
        }
        async fn set_locked(&self, _: &ImageKey, _: bool, _: u64) -> Result<bool, StoreError> {
            Err(StoreError::Backend("read-only test store".into()))
        }
        async fn locked(&self, _: &ImageKey) -> Result<bool, StoreError> {
            Ok(false)
        }
        async fn locks(
            &self,
            _: &TenantId,
            _: Page<(u64, ImageId)>,
        ) -> Result<Vec<LockEntry>, StoreError> {
            Ok(Vec::new())
        }
        async fn ban(&self, _: &TenantId, _: &str, _: &str, _: u64) -> Result<bool, StoreError> {
            Err(StoreError::Backend("read-only test store".into()))
        }
        async fn unban(&self, _: &TenantId, _: &str) -> Result<bool, StoreError> {
            Err(StoreError::Backend("read-only test store".into()))
        }
        async fn bans(
            &self,
            _: &TenantId,
            _: Page<(u64, String)>,
        ) -> Result<Vec<BanEntry>, StoreError> {
            Ok(Vec::new())
        }
        async fn images(&self, _: &TenantId, _: Page<i64>) -> Result<Vec<ImageEntry>, StoreError> {
            Ok(Vec::new())
        }
        async fn pages(&self, _: &TenantId, _: Page<i64>) -> Result<Vec<PageEntry>, StoreError> {
            Ok(Vec::new())
        }
        async fn ping(&self) -> Result<(), StoreError> {
            Ok(())
        }
    }

    impl Counting {
        fn position_now(&self) -> Position {
            Position {
                epoch: 1,
                seq: self.seq.load(Ordering::SeqCst) as u64,
            }
        }
    }

    fn key(image: &str) -> ImageKey {
        ImageKey::image(TenantId::new("t"), ImageId::new(image))
    }

    #[tokio::test]
    async fn concurrent_readers_share_one_read_per_position() {
        let store = Counting::default();
        let cache = SnapshotCache::default();
        let image = key("i");
        let got = futures_util::future::join_all((0..50).map(|_| cache.get(&store, &image))).await;
        assert_eq!(store.reads.load(Ordering::SeqCst), 1);
        let first = got[0].as_ref().expect("snapshot");
        for other in &got {
            // The very same bytes, not copies.
            assert!(Arc::ptr_eq(
                &first.json,
                &other.as_ref().expect("snapshot").json
            ));
        }
        // A commit moves the position: the next reader reads again, once.
        store.seq.store(1, Ordering::SeqCst);
        let again = cache.get(&store, &image).await.expect("snapshot");
        assert_eq!(again.position.seq, 1);
        cache.get(&store, &image).await.expect("snapshot");
        assert_eq!(store.reads.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn the_budget_evicts_the_least_recently_used() {
        let store = Counting::default();
        let one = serde_json::to_string(&Snapshot::default())
            .expect("json")
            .len();
        let cache = SnapshotCache::new(2 * one);
        for image in ["a", "b"] {
            cache.get(&store, &key(image)).await.expect("snapshot");
        }
        // "a" used again, so "b" is the one to go when "c" comes.
        cache.get(&store, &key("a")).await.expect("snapshot");
        cache.get(&store, &key("c")).await.expect("snapshot");
        assert_eq!(cache.bytes(), 2 * one);
        assert_eq!(store.reads.load(Ordering::SeqCst), 3);
        cache.get(&store, &key("a")).await.expect("snapshot");
        assert_eq!(store.reads.load(Ordering::SeqCst), 3, "a stayed");
        cache.get(&store, &key("b")).await.expect("snapshot");
        assert_eq!(store.reads.load(Ordering::SeqCst), 4, "b was evicted");
    }
}
