//! Gathering single datagrams for one destination into a GSO train, so a
//! read batch of datagrams from one sender leaves in one `sendmsg` rather
//! than one each. GRO already hands over trains when the sender used GSO;
//! this covers senders that write datagram by datagram.
//!
//! One train buffer per worker thread: a train lives only from a read
//! batch to the send right after it, so send memory, like receive memory,
//! does not grow with listeners or flows.

use std::cell::RefCell;

/// Most payload bytes one train may carry: a GSO send is one UDP packet to
/// the kernel until it is cut, so it must fit the largest IPv6 payload.
pub(crate) const MAX_TRAIN_BYTES: usize = 65_000;

#[derive(Debug, Default)]
pub(crate) struct Train {
    bytes: Vec<u8>,
    stride: usize,
    count: usize,
    /// A datagram shorter than the stride ends the train: GSO only allows
    /// the last segment to be short. An empty datagram travels alone.
    closed: bool,
}

thread_local! {
    static TRAIN: RefCell<Train> = RefCell::new(Train::default());
}

/// Runs `f` with this thread's train, which is empty before and after.
pub(crate) fn with_train<R>(f: impl FnOnce(&mut Train) -> R) -> R {
    TRAIN.with_borrow_mut(|train| {
        train.clear();
        let result = f(train);
        train.clear();
        result
    })
}

impl Train {
    /// Appends one datagram if it may leave in the same GSO send as those
    /// before it (at most `max_segments` of them); false leaves the train
    /// as it was.
    pub(crate) fn push(&mut self, datagram: &[u8], max_segments: usize) -> bool {
        if self.count > 0
            && (self.closed
                || datagram.is_empty()
                || datagram.len() > self.stride
                || self.count >= max_segments
                || self.bytes.len() + datagram.len() > MAX_TRAIN_BYTES)
        {
            return false;
        }
        if self.count == 0 {
            self.stride = datagram.len();
        }
        self.closed = datagram.is_empty() || datagram.len() < self.stride;
        self.bytes.extend_from_slice(datagram);
        self.count += 1;
        true
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The gathered datagrams back to back.
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The size every datagram but the last has.
    pub(crate) fn stride(&self) -> usize {
        self.stride
    }

    pub(crate) fn clear(&mut self) {
        self.bytes.clear();
        self.stride = 0;
        self.count = 0;
        self.closed = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::udp::io::datagram_count;

    /// Pushes datagrams of the given sizes and returns, per push, whether
    /// it was taken, with the number of datagrams the senders will count
    /// for the train (which must be the number taken).
    fn pushes(sizes: &[usize], max_segments: usize) -> (Vec<bool>, u64) {
        let mut train = Train::default();
        let taken = sizes
            .iter()
            .map(|&n| train.push(&vec![7u8; n], max_segments))
            .collect();
        let count = datagram_count(train.bytes().len(), train.stride());
        (taken, count)
    }

    #[test]
    fn push_table() {
        let cases: [(&[usize], usize, &[bool], u64); 8] = [
            (&[100, 100, 100], 64, &[true, true, true], 3),
            (&[100, 60, 100], 64, &[true, true, false], 2),
            (&[100, 120], 64, &[true, false], 1),
            (&[100, 100, 100], 2, &[true, true, false], 2),
            (&[0, 0], 64, &[true, false], 1),
            (&[100, 0, 100], 64, &[true, false, true], 2),
            (&[30_000, 30_000, 30_000], 64, &[true, true, false], 2),
            (&[100, 100], 1, &[true, false], 1),
        ];
        for (sizes, max, want_taken, want_count) in cases {
            let (taken, count) = pushes(sizes, max);
            assert_eq!(taken, want_taken, "{sizes:?} max {max}");
            assert_eq!(count, want_count, "{sizes:?} max {max}");
        }
    }

    #[test]
    fn a_train_keeps_its_datagrams_in_order_and_clears() {
        let mut train = Train::default();
        for i in 0..5u8 {
            assert!(train.push(&[i; 10], 64));
        }
        assert!(train.push(&[9; 4], 64));
        let want: Vec<u8> = (0..5u8).flat_map(|i| [i; 10]).chain([9; 4]).collect();
        assert_eq!((train.bytes(), train.stride()), (&want[..], 10));
        train.clear();
        assert!(train.is_empty());
        assert!(train.push(&[1; 30], 64), "a cleared train starts afresh");
        assert_eq!(train.stride(), 30);
    }
}
