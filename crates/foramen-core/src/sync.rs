//! The shared-state primitives of the pipeline edges: a poison-tolerant lock and the
//! newest-wins slot of one.

use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Duration;

/// Locks `m`, keeping going when another thread panicked while holding it: every lock in
/// Foramen guards plain data (counters, a slot), which stays usable, and a panicked
/// inference worker must not take the video path down with it.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// An edge of capacity one where the newest value wins: [`put`](Self::put) replaces
/// whatever is waiting and never blocks; readers either [`take`](Self::take) the value
/// (a consumer stage) or [`peek`](Self::peek) at a copy of it (a display that repaints
/// the same frame until a newer one comes).
#[derive(Debug)]
pub struct NewestSlot<T> {
    value: Mutex<Option<T>>,
    filled: Condvar,
}

impl<T> Default for NewestSlot<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> NewestSlot<T> {
    /// An empty slot.
    pub fn new() -> Self {
        Self {
            value: Mutex::new(None),
            filled: Condvar::new(),
        }
    }

    /// Puts `value` in the slot and wakes a waiting [`take_timeout`](Self::take_timeout);
    /// returns the value it replaced, which was never taken.
    pub fn put(&self, value: T) -> Option<T> {
        let old = lock(&self.value).replace(value);
        self.filled.notify_one();
        old
    }

    /// Takes the value, leaving the slot empty.
    pub fn take(&self) -> Option<T> {
        lock(&self.value).take()
    }

    /// Takes the value, waiting up to `timeout` for one (so a stop flag is seen in time).
    pub fn take_timeout(&self, timeout: Duration) -> Option<T> {
        let guard = lock(&self.value);
        let (mut guard, _) = self
            .filled
            .wait_timeout_while(guard, timeout, |v| v.is_none())
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        guard.take()
    }

    /// Wakes every waiting [`take_timeout`](Self::take_timeout) early, empty-handed if
    /// the slot is empty (a stop request that should not wait for the timeout).
    pub fn wake_all(&self) {
        let _guard = lock(&self.value);
        self.filled.notify_all();
    }

    /// Empties the slot without waking anyone (a seek discards the old position's value).
    pub fn clear(&self) -> Option<T> {
        self.take()
    }

    /// True when nothing is waiting.
    pub fn is_empty(&self) -> bool {
        lock(&self.value).is_none()
    }
}

impl<T: Clone> NewestSlot<T> {
    /// A copy of the value, left in the slot (cheap for the `Arc`s the pipeline passes).
    pub fn peek(&self) -> Option<T> {
        lock(&self.value).clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Instant;

    #[test]
    fn the_newest_value_wins_and_the_replaced_one_is_returned() {
        let slot = NewestSlot::new();
        assert_eq!(slot.put(1), None);
        assert_eq!(slot.put(2), Some(1));
        assert_eq!(slot.peek(), Some(2));
        assert_eq!(slot.take(), Some(2));
        assert!(slot.is_empty());
        assert_eq!(slot.take(), None);
    }

    #[test]
    fn take_timeout_wakes_on_put_and_gives_up_after_the_timeout() {
        let slot = Arc::new(NewestSlot::new());
        let t = Instant::now();
        assert_eq!(slot.take_timeout(Duration::from_millis(30)), None::<u32>);
        assert!(t.elapsed() >= Duration::from_millis(30));
        let s = slot.clone();
        let producer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            s.put(7);
        });
        let t = Instant::now();
        assert_eq!(slot.take_timeout(Duration::from_secs(10)), Some(7));
        assert!(t.elapsed() < Duration::from_secs(5));
        producer.join().expect("producer");
    }

    #[test]
    fn a_poisoned_lock_is_still_usable() {
        let m = Arc::new(Mutex::new(5));
        let m2 = m.clone();
        let _ = std::thread::spawn(move || {
            let _g = m2.lock().expect("first lock");
            panic!("poison it");
        })
        .join();
        assert!(m.is_poisoned());
        *lock(&m) += 1;
        assert_eq!(*lock(&m), 6);
    }
}
