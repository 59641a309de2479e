//! [`SortedMap`]: a map kept as a `Vec` sorted by key, looked up by binary search.
//!
//! The engine and the widget need maps keyed by discussion or comment id, and the widget's
//! wasm size is a goal (docs/BENCHMARKS.md §6a). A `HashMap` brings SipHash and hashbrown into
//! the bundle, a `BTreeMap` several kilobytes of node code for every key and value type; this
//! is a few hundred bytes per type. Lookups are O(log n); an insert or removal moves the
//! entries after it, O(n) but a `memmove` of small entries, cheap at the sizes involved (at most
//! a few thousand discussions on an image). Only the operations the workspace uses exist.

use std::borrow::Borrow;

/// A map kept sorted by key (see the module doc).
#[derive(Clone, Debug, PartialEq)]
pub struct SortedMap<K, V> {
    entries: Vec<(K, V)>,
}

impl<K, V> Default for SortedMap<K, V> {
    fn default() -> Self {
        SortedMap {
            entries: Vec::new(),
        }
    }
}

impl<K: Ord, V> SortedMap<K, V> {
    /// An empty map.
    pub fn new() -> Self {
        SortedMap::default()
    }

    fn find<Q: Ord + ?Sized>(&self, key: &Q) -> Result<usize, usize>
    where
        K: Borrow<Q>,
    {
        self.entries.binary_search_by(|(k, _)| k.borrow().cmp(key))
    }

    /// The value for `key`.
    pub fn get<Q: Ord + ?Sized>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
    {
        self.find(key).ok().map(|i| &self.entries[i].1)
    }

    /// Whether `key` has a value.
    pub fn contains_key<Q: Ord + ?Sized>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
    {
        self.find(key).is_ok()
    }

    /// Sets the value for `key`, returning the one it replaces.
    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        match self.find(&key) {
            Ok(i) => Some(std::mem::replace(&mut self.entries[i].1, value)),
            Err(i) => {
                self.entries.insert(i, (key, value));
                None
            }
        }
    }

    /// Removes and returns the value for `key`.
    pub fn remove<Q: Ord + ?Sized>(&mut self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
    {
        self.find(key).ok().map(|i| self.entries.remove(i).1)
    }

    /// Removes the value for `key`, if any, and returns it with the place where `key` belongs,
    /// for a later [`SortedMap::put`] of the same key that then needs no search (each search is
    /// a dozen key comparisons in a map of a thousand).
    pub fn take(&mut self, key: &K) -> (usize, Option<V>) {
        match self.find(key) {
            Ok(i) => (i, Some(self.entries.remove(i).1)),
            Err(i) => (i, None),
        }
    }

    /// Sets the value for `key`, which is not in the map, at `at` (where [`SortedMap::take`]
    /// said it belongs). Checked with its two neighbours: if the map changed since and `at` is
    /// not its place any more, it is searched for as by [`SortedMap::insert`].
    pub fn put(&mut self, at: usize, key: K, value: V) -> Option<V> {
        let after_previous = at == 0 || self.entries.get(at - 1).is_some_and(|(k, _)| *k < key);
        let before_next = self.entries.get(at).is_none_or(|(k, _)| *k > key);
        if after_previous && before_next {
            self.entries.insert(at, (key, value));
            return None;
        }
        self.insert(key, value)
    }

    /// Makes room for `additional` more entries, so a known number of inserts grows the
    /// storage once rather than by repeated doubling.
    pub fn reserve(&mut self, additional: usize) {
        self.entries.reserve(additional);
    }

    /// Removes every entry.
    pub fn clear(&mut self) {
        self.entries.clear();
    }

    /// How many entries there are.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there is no entry.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The values, in key order.
    pub fn into_values(self) -> impl Iterator<Item = V> {
        self.entries.into_iter().map(|(_, v)| v)
    }
}

impl<K: Ord, V> FromIterator<(K, V)> for SortedMap<K, V> {
    /// Inserts one by one (a later duplicate key wins, as with `HashMap`); no sort routine is
    /// linked for it.
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut map = SortedMap::new();
        for (k, v) in iter {
            map.insert(k, v);
        }
        map
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn behaves_like_a_map() {
        let mut m: SortedMap<String, u32> = SortedMap::new();
        assert!(m.is_empty());
        for (i, k) in ["m", "c", "x", "a", "c"].into_iter().enumerate() {
            m.insert(k.to_owned(), i as u32);
        }
        assert_eq!(m.len(), 4);
        assert_eq!(m.get("c"), Some(&4));
        assert!(m.contains_key("a") && !m.contains_key("b"));
        assert_eq!(m.remove("m"), Some(0));
        assert_eq!(m.remove("m"), None);
        assert_eq!(m.clone().into_values().collect::<Vec<_>>(), [3, 4, 2]);
        let n: SortedMap<&str, u32> = [("b", 1), ("a", 2), ("b", 3)].into_iter().collect();
        assert_eq!(n.into_values().collect::<Vec<_>>(), [2, 3]);
        m.clear();
        assert!(m.is_empty());
    }

    #[test]
    fn take_then_put_skips_the_search_and_survives_changes() {
        let mut m: SortedMap<u32, char> = [(10, 'a'), (20, 'b'), (30, 'c')].into_iter().collect();
        let (at, old) = m.take(&20);
        assert_eq!((at, old), (1, Some('b')));
        assert_eq!(m.put(at, 20, 'B'), None);
        let (at, old) = m.take(&25);
        assert_eq!((at, old), (2, None));
        m.put(at, 25, 'x');
        assert_eq!(m.clone().into_values().collect::<String>(), "aBxc");
        // A stale place (the map changed in between) falls back to a search.
        let (at, _) = m.take(&5);
        m.remove(&10);
        m.insert(1, 'z');
        m.put(at + 3, 5, 'y');
        assert_eq!(m.into_values().collect::<String>(), "zyBxc");
    }
}
