//! One party's local work spread over its machine's cores: independent computations (the
//! four vectors of a proof, the two halves of a long sum) run side by side on rayon's pool.
//! Work on fewer than [`PAR_MIN`] elements stays on the calling thread, where handing it
//! off would cost more than it saves. Results never depend on the split: the same values
//! come out on one core or many.
//!
//! Holds no protocol logic, no randomness and no networking.

/// Below this many elements (of the largest input), work stays on the calling thread.
pub const PAR_MIN: usize = 1 << 14;

/// `a()` and `b()`, side by side when `len` (the elements they work on) is large.
pub fn join<A: Send, B: Send>(
    len: usize,
    a: impl FnOnce() -> A + Send,
    b: impl FnOnce() -> B + Send,
) -> (A, B) {
    if len >= PAR_MIN {
        rayon::join(a, b)
    } else {
        (a(), b())
    }
}

/// Four independent computations, side by side when `len` is large.
#[allow(clippy::type_complexity)] // four closures in, four results out
pub fn join4<A: Send, B: Send, C: Send, D: Send>(
    len: usize,
    a: impl FnOnce() -> A + Send,
    b: impl FnOnce() -> B + Send,
    c: impl FnOnce() -> C + Send,
    d: impl FnOnce() -> D + Send,
) -> (A, B, C, D) {
    let ((a, b), (c, d)) = join(len, || join(len, a, b), || join(len, c, d));
    (a, b, c, d)
}

/// `f` over `0..len` split at a multiple of `unit` into pieces of at least [`PAR_MIN`]
/// elements, the pieces' results combined with `add` (which must be associative, as a
/// field sum is). `f(start, end)` covers elements start..end.
pub fn sum_ranges<T: Send>(
    len: usize,
    unit: usize,
    f: &(impl Fn(usize, usize) -> T + Sync),
    add: &(impl Fn(T, T) -> T + Sync),
) -> T {
    sum_range(0, len, unit.max(1), f, add)
}

fn sum_range<T: Send>(
    start: usize,
    end: usize,
    unit: usize,
    f: &(impl Fn(usize, usize) -> T + Sync),
    add: &(impl Fn(T, T) -> T + Sync),
) -> T {
    let mid = start + (end - start) / 2 / unit * unit;
    if end - start < 2 * PAR_MIN || mid == start {
        return f(start, end);
    }
    let (x, y) = rayon::join(
        || sum_range(start, mid, unit, f, add),
        || sum_range(mid, end, unit, f, add),
    );
    add(x, y)
}

/// `f(scratch, k, piece)` for every piece k of `out` of `size` elements (the last may be
/// shorter), the pieces side by side when `out` is large; each worker thread makes its
/// own scratch with `init` and keeps it from piece to piece.
pub fn each_piece<T: Send, S>(
    out: &mut [T],
    size: usize,
    init: impl Fn() -> S + Send + Sync,
    f: impl Fn(&mut S, usize, &mut [T]) + Send + Sync,
) {
    use rayon::prelude::*;
    let size = size.max(1);
    if out.len() >= PAR_MIN {
        out.par_chunks_mut(size)
            .enumerate()
            .for_each_init(init, |s, (k, piece)| f(s, k, piece));
    } else {
        let mut s = init();
        for (k, piece) in out.chunks_mut(size).enumerate() {
            f(&mut s, k, piece);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A split sum equals the sequential one, for lengths around the threshold and units
    /// that do and do not divide them; every piece starts at a multiple of the unit.
    #[test]
    fn split_sums_equal_the_sequential_sum() {
        for len in [
            0usize,
            1,
            PAR_MIN,
            2 * PAR_MIN - 1,
            2 * PAR_MIN,
            5 * PAR_MIN + 3,
        ] {
            for unit in [1usize, 2, 6, 64] {
                let want: u64 = (0..len as u64).map(|i| i * i).sum();
                let got = sum_ranges(
                    len,
                    unit,
                    &|s, e| {
                        assert!(s % unit == 0, "piece at {s} with unit {unit}");
                        (s as u64..e as u64).map(|i| i * i).sum::<u64>()
                    },
                    &|a, b| a + b,
                );
                assert_eq!(got, want, "len {len}, unit {unit}");
            }
        }
        let (a, b, c, d) = join4(PAR_MIN, || 1, || 2, || 3, || 4);
        assert_eq!((a, b, c, d), (1, 2, 3, 4));
    }

    /// Every piece is visited once, with its index, on one thread or many; the last piece
    /// is the short one.
    #[test]
    fn pieces_are_each_visited_once_with_their_index() {
        for len in [0usize, 1, 7, PAR_MIN - 1, PAR_MIN, 3 * PAR_MIN + 5] {
            for size in [1usize, 3, 4096] {
                let mut out = vec![usize::MAX; len];
                each_piece(&mut out, size, Vec::<u8>::new, |_, k, piece| {
                    assert!(piece.len() == size || (k + 1) * size >= len);
                    for (j, x) in piece.iter_mut().enumerate() {
                        assert_eq!(*x, usize::MAX, "visited twice");
                        *x = k * size + j;
                    }
                });
                assert!(out.iter().enumerate().all(|(i, x)| *x == i), "len {len}");
            }
        }
    }
}
