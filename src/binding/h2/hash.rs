//! The hasher of the HTTP/2 maps.

/// A hasher for keys this process chooses itself, which need no defence against collisions
/// chosen by a peer: its connections' addresses, and its HTTP/2 streams' ids (a server's frames
/// only look streams up, never add one). A multiply-xor per word written.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct OwnHasher;

impl std::hash::BuildHasher for OwnHasher {
    type Hasher = OwnHash;
    fn build_hasher(&self) -> OwnHash {
        OwnHash(0)
    }
}

pub(crate) struct OwnHash(u64);

impl std::hash::Hasher for OwnHash {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.write_u64(u64::from(*b));
        }
    }
    fn write_u8(&mut self, n: u8) {
        self.write_u64(u64::from(n));
    }
    fn write_u16(&mut self, n: u16) {
        self.write_u64(u64::from(n));
    }
    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }
}

#[cfg(test)]
mod tests {
    use std::hash::{BuildHasher, Hasher};

    use super::OwnHasher;

    #[test]
    fn odd_stream_ids_spread_and_words_hash_alike_whatever_their_width() {
        let hash = |n: u32| OwnHasher.hash_one(n);
        let ids: std::collections::HashSet<u64> = (0..1000u32).map(|k| hash(2 * k + 1)).collect();
        assert_eq!(ids.len(), 1000);
        let mut a = OwnHasher.build_hasher();
        a.write_u8(7);
        let mut b = OwnHasher.build_hasher();
        b.write_u64(7);
        assert_eq!(a.finish(), b.finish());
    }
}
