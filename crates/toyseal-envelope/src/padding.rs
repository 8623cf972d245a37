//! Padmé length padding (Nikitin et al., "Reducing Metadata Leakage from Encrypted Files and
//! Communication with PURBs", PETS 2019, §4): the padded length keeps only
//! `floor(log2(floor(log2 L))) + 1` significant bits, so a size leaks O(log log L) bits and the
//! overhead is at most 12 %.
//!
//! Written here (a few lines) rather than taken from the published crate, which computes with
//! `usize` and is wrong on 32-bit targets (a toy's MCU).

/// The Padmé padded length of `len` bytes (`len` itself for `len < 2`).
pub fn padme(len: u64) -> u64 {
    if len < 2 {
        return len;
    }
    let e = 63 - u64::from(len.leading_zeros()); // floor(log2 len), >= 1
    let s = 64 - u64::from(e.leading_zeros()); // floor(log2 e) + 1
    let last_bits = e - s;
    let mask = (1u64 << last_bits) - 1;
    // Cannot overflow for any length an envelope may have (<= 2^52 by the chunk limits).
    len.saturating_add(mask) & !mask
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_values() {
        // Values from the PURBs paper's definition, computed by hand.
        assert_eq!(padme(0), 0);
        assert_eq!(padme(1), 1);
        assert_eq!(padme(9), 10);
        assert_eq!(padme(100), 104);
        assert_eq!(padme(1000), 1024);
        assert_eq!(padme(65_536), 65_536);
        assert_eq!(padme(65_537), 67_584);
    }

    #[test]
    fn overhead_is_at_most_twelve_percent_for_every_small_length() {
        for len in 1..200_000u64 {
            let p = padme(len);
            assert!(p >= len);
            assert!((p - len) * 100 <= len * 12, "len {len} -> {p}");
        }
    }

    proptest! {
        #[test]
        fn overhead_bounded_and_idempotent(len in 1u64..(1 << 48)) {
            let p = padme(len);
            prop_assert!(p >= len);
            prop_assert!((p - len) as u128 * 100 <= len as u128 * 12);
            prop_assert_eq!(padme(p), p);
        }
    }
}
