//! Shared by the `fuzz_*` test files: mutations of a valid encoding (truncate, flip, splice,
//! insert, huge length prefixes) as a proptest strategy, and a counting allocator that
//! records the largest single allocation made on the current thread.
//!
//! Holds no decoder and no expectation about one: each test file states its own properties.

#![allow(dead_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use proptest::prelude::*;
use proptest::sample::Index;

/// A change to a valid encoding.
#[derive(Debug, Clone)]
pub enum Mutation {
    /// Keep only the first bytes.
    Truncate(Index),
    /// XOR one byte with a non-zero mask.
    Flip(Index, u8),
    /// Overwrite bytes from a position with others.
    Splice(Index, Vec<u8>),
    /// Insert bytes at a position.
    Insert(Index, Vec<u8>),
    /// Write a huge length prefix at a position: bincode's varint `0xfd` followed by a
    /// little-endian u64, or four big-endian bytes of `0xff` for the fixed-width formats.
    HugePrefix(Index, u64),
    /// Append bytes.
    Append(Vec<u8>),
}

impl Mutation {
    /// The mutated copy of `valid`.
    pub fn apply(&self, valid: &[u8]) -> Vec<u8> {
        let mut v = valid.to_vec();
        let at = |i: &Index, len: usize| if len == 0 { 0 } else { i.index(len) };
        match self {
            Mutation::Truncate(i) => v.truncate(at(i, valid.len())),
            Mutation::Flip(i, mask) => {
                if !v.is_empty() {
                    let p = at(i, v.len());
                    v[p] ^= mask.max(&1);
                }
            }
            Mutation::Splice(i, bytes) => {
                let p = at(i, v.len());
                for (k, b) in bytes.iter().enumerate() {
                    match v.get_mut(p + k) {
                        Some(x) => *x = *b,
                        None => v.push(*b),
                    }
                }
            }
            Mutation::Insert(i, bytes) => {
                let p = at(i, v.len() + 1);
                v.splice(p..p, bytes.iter().copied());
            }
            Mutation::HugePrefix(i, n) => {
                let p = at(i, v.len() + 1);
                let mut prefix = vec![0xfd];
                prefix.extend_from_slice(&n.to_le_bytes());
                if n % 2 == 0 {
                    prefix = vec![0xff; 4];
                }
                let end = (p + prefix.len()).min(v.len());
                v.splice(p..end, prefix);
            }
            Mutation::Append(bytes) => v.extend_from_slice(bytes),
        }
        v
    }
}

/// Any mutation; huge prefixes range over every magnitude up to 2^64 − 1.
pub fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        any::<Index>().prop_map(Mutation::Truncate),
        (any::<Index>(), 1..=255u8).prop_map(|(i, m)| Mutation::Flip(i, m)),
        (any::<Index>(), prop::collection::vec(any::<u8>(), 1..12))
            .prop_map(|(i, b)| Mutation::Splice(i, b)),
        (any::<Index>(), prop::collection::vec(any::<u8>(), 1..12))
            .prop_map(|(i, b)| Mutation::Insert(i, b)),
        (any::<Index>(), (20u32..64).prop_map(|s| 1u64 << s))
            .prop_map(|(i, n)| Mutation::HugePrefix(i, n)),
        (any::<Index>(), Just(u64::MAX)).prop_map(|(i, n)| Mutation::HugePrefix(i, n)),
        prop::collection::vec(any::<u8>(), 1..8).prop_map(Mutation::Append),
    ]
}

/// Up to three mutations applied in turn.
pub fn mutations() -> impl Strategy<Value = Vec<Mutation>> {
    prop::collection::vec(mutation(), 1..4)
}

/// Applies every mutation in turn.
pub fn apply_all(valid: &[u8], ms: &[Mutation]) -> Vec<u8> {
    ms.iter().fold(valid.to_vec(), |v, m| m.apply(&v))
}

thread_local! {
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

/// The system allocator, recording the largest single request made on each thread.
pub struct Counting;

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

fn note(size: usize) {
    let _ = LARGEST.try_with(|l| {
        if size > l.get() {
            l.set(size)
        }
    });
}

/// Runs `f` and returns its result with the largest single allocation it made on this
/// thread (0 if none).
pub fn largest_allocation<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let before = LARGEST.with(|l| l.replace(0));
    let out = f();
    let largest = LARGEST.with(|l| l.replace(before.max(l.get())));
    (out, largest)
}
