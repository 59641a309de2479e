//! A first-in, first-out queue for the engine's outputs (frames to send, socket actions, view
//! updates).
//!
//! `std::collections::VecDeque` is a ring buffer: each element type it is used with brings its
//! own copy of the wrap-around growth, slicing and dropping code into the widget's wasm (four
//! types, about 2 KB). The engine's callers drain every queue after each input, so a plain
//! `Vec` read from a moving head does the same job: taken items leave `None` behind, and the
//! storage is reused once the queue is empty (or compacted once more than half of it is
//! taken, so a caller that never drains fully does not grow it without bound).

/// A FIFO queue: [`Queue::push_back`], [`Queue::pop_front`].
#[derive(Clone, Debug)]
pub struct Queue<T> {
    /// Items from `head` on are queued (all `Some`); the ones before were taken.
    items: Vec<Option<T>>,
    head: usize,
}

impl<T> Default for Queue<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Queue<T> {
    /// An empty queue.
    pub const fn new() -> Self {
        Self {
            items: Vec::new(),
            head: 0,
        }
    }

    /// Adds `item` at the back.
    pub fn push_back(&mut self, item: T) {
        if self.head > 0 && self.head * 2 >= self.items.len() {
            self.items.drain(..self.head);
            self.head = 0;
        }
        self.items.push(Some(item));
    }

    /// Takes the item at the front.
    pub fn pop_front(&mut self) -> Option<T> {
        let item = self.items.get_mut(self.head)?.take();
        self.head += 1;
        if self.head == self.items.len() {
            self.clear();
        }
        item
    }

    /// How many items are queued.
    pub fn len(&self) -> usize {
        self.items.len() - self.head
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drops every queued item.
    pub fn clear(&mut self) {
        self.items.clear();
        self.head = 0;
    }

    /// The queued items, front first.
    pub fn iter(&self) -> impl Iterator<Item = &T> {
        self.items[self.head..].iter().flatten()
    }
}

impl<T> Extend<T> for Queue<T> {
    fn extend<I: IntoIterator<Item = T>>(&mut self, iter: I) {
        for item in iter {
            self.push_back(item);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Queue;

    #[test]
    fn first_in_first_out_across_partial_drains() {
        let mut q = Queue::new();
        let mut next_in = 0;
        let mut next_out = 0;
        for round in 1..50 {
            for _ in 0..round % 7 {
                q.push_back(next_in);
                next_in += 1;
            }
            for _ in 0..round % 5 {
                if let Some(v) = q.pop_front() {
                    assert_eq!(v, next_out);
                    next_out += 1;
                }
            }
            assert_eq!(q.len(), next_in - next_out);
            assert!(q.iter().copied().eq(next_out..next_in));
            // Taken items are compacted away: storage stays within twice what is queued.
            assert!(q.items.len() <= 2 * q.len() + 1);
        }
        while let Some(v) = q.pop_front() {
            assert_eq!(v, next_out);
            next_out += 1;
        }
        assert_eq!(next_out, next_in);
        assert!(q.is_empty());
        q.extend([1, 2]);
        q.clear();
        assert_eq!(q.pop_front(), None);
    }
}
