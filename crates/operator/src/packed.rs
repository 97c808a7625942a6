//! Bytes the operator keeps for every key but reads rarely, LZ4-compressed: the status
//! documents it wrote ([`crate::cache::DocJson`]), the spec texts
//! ([`crate::cache::SpecText`]) and each key's validated spec (the parsed-spec memo).
//! At 10,000 specs these were ~30 MiB of the operator's peak as plain bytes
//! (heaptrack, BENCHMARKS.md); JSON and YAML of this kind compress to about 40–60 %,
//! and unpacking one costs a few microseconds.

use std::sync::Arc;

/// Compressed bytes, cheap to clone (shared).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packed(Arc<[u8]>);

impl Packed {
    /// Keeps `bytes`, compressed.
    #[must_use]
    pub fn pack(bytes: &[u8]) -> Self {
        Self(Arc::from(lz4_flex::compress_prepend_size(bytes)))
    }

    /// The bytes kept (`None` only if the packed bytes were damaged in memory).
    #[must_use]
    pub fn unpack(&self) -> Option<Vec<u8>> {
        lz4_flex::decompress_size_prepended(&self.0).ok()
    }

    /// The bytes kept, empty if they were damaged in memory (a spec text read so is
    /// then reported as an empty document rather than guessed at).
    #[must_use]
    pub fn bytes(&self) -> Vec<u8> {
        self.unpack().unwrap_or_default()
    }

    /// Bytes held.
    #[must_use]
    pub fn packed_len(&self) -> usize {
        self.0.len()
    }

    /// Whether both are the same allocation (one copy kept, not two).
    #[must_use]
    pub fn same(&self, other: &Packed) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn packed_bytes_come_back_unchanged_and_clones_share_one_copy() {
        let text = b"apiVersion: steward/v1\nkind: ServiceSpec\n".repeat(20);
        let packed = Packed::pack(&text);
        assert_eq!(packed.unpack().unwrap(), text);
        assert_eq!(packed.bytes(), text);
        assert!(packed.packed_len() < text.len());
        assert!(packed.same(&packed.clone()));
        assert!(!packed.same(&Packed::pack(&text)));
        assert_eq!(Packed::pack(b"").bytes(), Vec::<u8>::new());
    }
}
