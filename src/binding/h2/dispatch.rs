//! The order in which hyper opens HTTP/2 streams, counted per dispatch task.
//!
//! hyper's HTTP/2 client opens a connection's streams on one task (its `ClientTask`), one
//! request at a time: it asks the request body `size_hint()`, then `is_end_stream()`, then
//! opens the stream, whose id h2 fixes there, 1, 3, 5... in that order. So every request body
//! of the layer, traced or not, counts itself there, under the task's tokio id, and the k-th
//! request counted on a task is stream 2k-1 of that task's connection.
//!
//! Why a process-wide table: hyper gives the dispatch task nothing of the connection, and an
//! untraced request carries nothing that leads there (hyper-util's capture would cost it 4
//! allocations); its task id is the one identity it sees. The table is a fixed array of
//! counters: no lock, no allocation, a few atomic operations per request. A task's counter is
//! only ever bumped by that task, whose requests come one at a time.
//!
//! A slot whose task went quiet for two rounds of pressure on the table may be taken by
//! another task; if that task was alive, its next count starts again from 1. Such a restarted
//! count is recognised: its slot was born after its connection wrote its first stream (see
//! [`next_seq`]), and it names no stream.

use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};

use super::hash::OwnHasher;

/// Slots in the table: live HTTP/2 connections it can count at once.
const SLOTS: usize = 512;
/// Slots looked at for one task.
const PROBES: usize = 8;

struct Slot {
    /// The task's key (0: free).
    task: AtomicU64,
    /// The requests counted on it (the low 40 bits), and the low bits of `born` above them: a
    /// count bumped by a task whose slot was just taken by another fails, not corrupts.
    word: AtomicU64,
    /// When the slot was taken, in [`next_seq`]'s order.
    born: AtomicU64,
    /// The table's epoch at the task's last count.
    used: AtomicU64,
}

impl Slot {
    const fn new() -> Self {
        Self {
            task: AtomicU64::new(0),
            word: AtomicU64::new(0),
            born: AtomicU64::new(0),
            used: AtomicU64::new(0),
        }
    }
}

static TABLE: [Slot; SLOTS] = [const { Slot::new() }; SLOTS];

/// Orders the birth of slots and the first stream each connection writes.
static SEQ: AtomicU64 = AtomicU64::new(1);

/// The bits of a slot's word that count.
const COUNT: u64 = (1 << 40) - 1;

fn tag(born: u64) -> u64 {
    born << 40
}

/// Advances when a task finds no slot: slots not used for two epochs may be taken.
static EPOCH: AtomicU64 = AtomicU64::new(2);

/// The next number in the order of slot births and connections' first streams.
pub(crate) fn next_seq() -> u64 {
    SEQ.fetch_add(1, Ordering::AcqRel)
}

/// One request counted on its dispatch task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Dispatch {
    /// The task's key.
    pub(crate) task: u64,
    /// The request is the `ordinal`-th counted on the task, from 1.
    pub(crate) ordinal: u64,
    /// When the task's slot was born, in [`next_seq`]'s order.
    pub(crate) born: u64,
}

impl Dispatch {
    /// The stream id hyper gives the request, if the count is all the task's.
    pub(crate) fn stream_id(&self) -> Option<u32> {
        u32::try_from(self.ordinal.checked_mul(2)?.checked_sub(1)?)
            .ok()
            .filter(|id| *id <= 0x7fff_ffff)
    }
}

/// The key of a tokio task id: the id itself, mixed (a bijection: two tasks never share one).
fn key(id: tokio::task::Id) -> u64 {
    OwnHasher.hash_one(id)
}

/// Counts the request whose stream hyper opens next on the current task. `None` outside a tokio
/// task, or when the table has no room for a new task.
pub(crate) fn count() -> Option<Dispatch> {
    count_on(key(tokio::task::try_id()?))
}

/// The request just counted on the current task opens no stream after all.
pub(crate) fn uncount(dispatch: &Dispatch) {
    if let Some(slot) = find(dispatch.task) {
        let word = tag(dispatch.born) | dispatch.ordinal;
        let _ = slot
            .word
            .compare_exchange(word, word - 1, Ordering::AcqRel, Ordering::Acquire);
    }
}

/// The requests counted so far on `task`, if its slot is the one born at `born`.
pub(crate) fn counted(task: u64, born: u64) -> Option<u64> {
    let word = find(task)?.word.load(Ordering::Acquire);
    (word & !COUNT == tag(born)).then_some(word & COUNT)
}

/// `task`'s connection closed: its slot is free.
pub(crate) fn release(task: u64, born: u64) {
    if let Some(slot) = find(task) {
        if slot.born.load(Ordering::Acquire) == born {
            let _ = slot
                .task
                .compare_exchange(task, 0, Ordering::AcqRel, Ordering::Acquire);
        }
    }
}

fn probes(task: u64) -> impl Iterator<Item = &'static Slot> {
    let start = (task >> 55) as usize;
    (0..PROBES).map(move |i| &TABLE[(start + i) % SLOTS])
}

fn find(task: u64) -> Option<&'static Slot> {
    probes(task).find(|slot| slot.task.load(Ordering::Acquire) == task)
}

/// Counts a request on the task keyed `task`.
pub(crate) fn count_on(task: u64) -> Option<Dispatch> {
    let epoch = EPOCH.load(Ordering::Relaxed);
    if let Some(slot) = find(task) {
        let born = slot.born.load(Ordering::Acquire);
        let mut word = slot.word.load(Ordering::Acquire);
        // the slot is this task's as long as its word carries its birth
        while word & !COUNT == tag(born) && slot.task.load(Ordering::Acquire) == task {
            match slot.word.compare_exchange_weak(
                word,
                word + 1,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    if slot.used.load(Ordering::Relaxed) != epoch {
                        slot.used.store(epoch, Ordering::Relaxed);
                    }
                    return Some(Dispatch {
                        task,
                        ordinal: (word & COUNT) + 1,
                        born,
                    });
                }
                Err(now) => word = now,
            }
        }
    }
    // a new task: a free slot, or one whose task went quiet for two epochs
    for slot in probes(task) {
        let current = slot.task.load(Ordering::Acquire);
        let stale = current != 0 && slot.used.load(Ordering::Relaxed) + 2 <= epoch;
        if (current == 0 || stale)
            && slot
                .task
                .compare_exchange(current, task, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            let born = next_seq();
            slot.born.store(born, Ordering::Release);
            slot.word.store(tag(born) | 1, Ordering::Release);
            slot.used.store(epoch, Ordering::Relaxed);
            return Some(Dispatch {
                task,
                ordinal: 1,
                born,
            });
        }
    }
    EPOCH.fetch_add(1, Ordering::Relaxed);
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_task_counts_its_own_requests_from_one() {
        let (a, b) = (0x1234_5678_9abc_def1, 0x1234_5678_9abc_def3);
        let first = count_on(a).unwrap();
        assert_eq!((first.ordinal, first.stream_id()), (1, Some(1)));
        assert_eq!(count_on(b).unwrap().ordinal, 1);
        let second = count_on(a).unwrap();
        assert_eq!((second.ordinal, second.stream_id()), (2, Some(3)));
        assert_eq!(second.born, first.born);
        assert_eq!(counted(a, first.born), Some(2));
        uncount(&second);
        assert_eq!(counted(a, first.born), Some(1));
        release(a, first.born);
        assert_eq!(counted(a, first.born), None);
        release(b, count_on(b).unwrap().born);
    }

    #[test]
    fn a_full_neighbourhood_refuses_then_yields_its_stale_slots() {
        // tasks whose keys all land in one neighbourhood of the table
        let task = |i: u64| (0x7f << 55) | (i + 1);
        let held: Vec<Dispatch> = (0..PROBES as u64)
            .map(|i| count_on(task(i)).unwrap())
            .collect();
        let late = task(100);
        assert_eq!(count_on(late), None, "no room yet");
        assert_eq!(count_on(late), None, "the held slots are one epoch old");
        // two epochs on, a held task that went quiet gives its slot up, and its count
        // restarts in a slot born later than the first
        let taken = count_on(late).unwrap();
        assert_eq!(taken.ordinal, 1);
        let restarted = held
            .iter()
            .find(|d| counted(d.task, d.born).is_none())
            .unwrap();
        let again = count_on(restarted.task);
        if let Some(again) = again {
            assert!(again.born > restarted.born);
            release(again.task, again.born);
        }
        release(taken.task, taken.born);
        for d in &held {
            release(d.task, d.born);
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn tokio_tasks_have_keys_of_their_own() {
        let keys: std::collections::HashSet<u64> = futures_keys().await;
        assert_eq!(keys.len(), 16);
    }

    async fn futures_keys() -> std::collections::HashSet<u64> {
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..16 {
            set.spawn(async { key(tokio::task::id()) });
        }
        let mut keys = std::collections::HashSet::new();
        while let Some(k) = set.join_next().await {
            keys.insert(k.unwrap());
        }
        keys
    }
}
