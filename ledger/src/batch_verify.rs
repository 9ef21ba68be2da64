//! Ed25519 batch verification with the public keys grouped.
//!
//! An export holds a million signatures by a handful of partner keys. The standard
//! batch equation (as in ed25519-dalek's `verify_batch`) multiplies every signature's
//! key separately:
//!
//!   (-Σ zᵢsᵢ)·B + Σ zᵢ·Rᵢ + Σ (zᵢkᵢ)·Aᵢ = 0
//!
//! With the terms of each distinct key summed first, the multiscalar multiplication has
//! n + keys + 1 points instead of 2n + 1, which is most of the auditor's work. `s` must
//! be canonical and `R` must decode; the zᵢ are fresh random 128-bit scalars, so bad
//! signatures cannot cancel out. The equation is the *cofactored* one (multiplied by 8,
//! RFC 8032 §5.1.7), which makes the verdict deterministic: with the cofactorless
//! equation, a signature whose `R` carries a small-order component passes or fails
//! depending on the random weights. For one signature it is exactly RFC 8032's
//! cofactored check, which [`verify_one`] offers to name a failing signature.

use crate::hash::Hash;
use curve25519_dalek::constants::ED25519_BASEPOINT_POINT;
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::{IsIdentity, VartimeMultiscalarMul};
use ed25519_dalek::VerifyingKey;
use sha2::{Digest, Sha512};
use std::collections::HashMap;

/// True if every signature verifies. On `false`, check one by one to find which failed.
pub fn verify_batch(messages: &[&[u8]], signatures: &[[u8; 64]], keys: &[VerifyingKey]) -> bool {
    if messages.len() != signatures.len() || keys.len() != signatures.len() {
        return false;
    }
    if signatures.is_empty() {
        return true;
    }
    let mut seed = [0u8; 32];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut seed);

    let mut key_index: HashMap<[u8; 32], usize> = HashMap::new();
    let mut key_points: Vec<EdwardsPoint> = Vec::new();
    let mut key_scalars: Vec<Scalar> = Vec::new();
    let mut r_points: Vec<EdwardsPoint> = Vec::with_capacity(signatures.len());
    let mut r_scalars: Vec<Scalar> = Vec::with_capacity(signatures.len());
    let mut b_scalar = Scalar::ZERO;

    for (i, ((message, signature), key)) in messages.iter().zip(signatures).zip(keys).enumerate() {
        let mut r_bytes = [0u8; 32];
        r_bytes.copy_from_slice(&signature[..32]);
        let mut s_bytes = [0u8; 32];
        s_bytes.copy_from_slice(&signature[32..]);
        let Some(s) = Option::<Scalar>::from(Scalar::from_canonical_bytes(s_bytes)) else {
            return false;
        };
        let Some(r) = CompressedEdwardsY(r_bytes).decompress() else {
            return false;
        };
        let k = Scalar::from_hash(
            Sha512::new()
                .chain_update(r_bytes)
                .chain_update(key.as_bytes())
                .chain_update(message),
        );
        let z_digest = Hash::of_parts(&[&seed, &(i as u64).to_le_bytes()]);
        let mut z_bytes = [0u8; 16];
        z_bytes.copy_from_slice(&z_digest.0[..16]);
        let z = Scalar::from(u128::from_le_bytes(z_bytes));

        b_scalar -= z * s;
        r_points.push(r);
        r_scalars.push(z);
        let slot = *key_index.entry(*key.as_bytes()).or_insert_with(|| {
            key_points.push(key.to_edwards());
            key_scalars.push(Scalar::ZERO);
            key_points.len() - 1
        });
        key_scalars[slot] += z * k;
    }

    let scalars = std::iter::once(b_scalar)
        .chain(r_scalars)
        .chain(key_scalars);
    let points = std::iter::once(ED25519_BASEPOINT_POINT)
        .chain(r_points)
        .chain(key_points);
    EdwardsPoint::vartime_multiscalar_mul(scalars, points)
        .mul_by_cofactor()
        .is_identity()
}

/// RFC 8032's cofactored check of a single signature: the same verdict the batch gives.
pub fn verify_one(message: &[u8], signature: &[u8; 64], key: &VerifyingKey) -> bool {
    verify_batch(
        &[message],
        std::slice::from_ref(signature),
        std::slice::from_ref(key),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::{Signer, SigningKey};

    fn fixture(n: usize, keys: usize) -> (Vec<Vec<u8>>, Vec<[u8; 64]>, Vec<VerifyingKey>) {
        let signers: Vec<SigningKey> = (0..keys)
            .map(|i| SigningKey::from_bytes(&[i as u8 + 1; 32]))
            .collect();
        let messages: Vec<Vec<u8>> = (0..n)
            .map(|i| format!("message {i}").into_bytes())
            .collect();
        let signatures = messages
            .iter()
            .enumerate()
            .map(|(i, m)| signers[i % keys].sign(m).to_bytes())
            .collect();
        let verifying = (0..n).map(|i| signers[i % keys].verifying_key()).collect();
        (messages, signatures, verifying)
    }

    #[test]
    fn accepts_good_batches_and_refuses_any_single_bad_signature() {
        let (messages, mut signatures, keys) = fixture(40, 3);
        let refs: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
        assert!(verify_batch(&refs, &signatures, &keys));
        // A flipped bit in R, in s, a wrong message, a wrong key: each is caught.
        signatures[7][3] ^= 1;
        assert!(!verify_batch(&refs, &signatures, &keys));
        signatures[7][3] ^= 1;
        signatures[9][40] ^= 1;
        assert!(!verify_batch(&refs, &signatures, &keys));
        signatures[9][40] ^= 1;
        let mut wrong = refs.clone();
        wrong[11] = b"another message";
        assert!(!verify_batch(&wrong, &signatures, &keys));
        let mut swapped = keys.clone();
        swapped.swap(0, 1);
        assert!(!verify_batch(&refs, &signatures, &swapped));
        assert!(verify_batch(&[], &[], &[]));
    }

    #[test]
    fn verdicts_on_small_order_tweaks_are_deterministic() {
        // A key holder who signs with R' = rB + T, T of order two, and S = r + k'a for
        // k' = H(R' || A || M): valid under the cofactored equation, off by T under the
        // cofactorless one. The verdict must not depend on the random weights.
        let seed = [7u8; 32];
        let key = SigningKey::from_bytes(&seed).verifying_key();
        let expanded = Sha512::digest(seed);
        let mut clamped = [0u8; 32];
        clamped.copy_from_slice(&expanded[..32]);
        clamped[0] &= 248;
        clamped[31] &= 127;
        clamped[31] |= 64;
        let a = Scalar::from_bytes_mod_order(clamped);
        assert_eq!(
            EdwardsPoint::mul_base(&a).compress().to_bytes(),
            key.to_bytes()
        );
        let mut order_two_bytes = [0xffu8; 32];
        order_two_bytes[0] = 0xec;
        order_two_bytes[31] = 0x7f;
        let order_two = CompressedEdwardsY(order_two_bytes).decompress().unwrap();
        assert!(order_two.is_small_order() && !order_two.is_identity());
        let message = b"a tweaked signature";
        let r = Scalar::from(123_456_789u64);
        let tweaked_r = (EdwardsPoint::mul_base(&r) + order_two).compress();
        let k = Scalar::from_hash(
            Sha512::new()
                .chain_update(tweaked_r.as_bytes())
                .chain_update(key.as_bytes())
                .chain_update(message),
        );
        let s = r + k * a;
        let mut signature = [0u8; 64];
        signature[..32].copy_from_slice(tweaked_r.as_bytes());
        signature[32..].copy_from_slice(s.as_bytes());
        let verdicts: Vec<bool> = (0..16)
            .map(|_| verify_one(message, &signature, &key))
            .collect();
        assert!(verdicts.iter().all(|&v| v), "{verdicts:?}");
        // ed25519-dalek's strict check refuses it, which is why the auditor names failing
        // signatures with `verify_one`, not `verify_strict`.
        let strict = key.verify_strict(message, &ed25519_dalek::Signature::from_bytes(&signature));
        assert!(strict.is_err());
    }

    #[test]
    fn two_bad_signatures_cannot_cancel_out() {
        // Shifting one signature's s by +d and another's (same key, same z unknown) by -d
        // would cancel in an unweighted sum; the random weights stop it.
        let (messages, mut signatures, keys) = fixture(8, 1);
        let refs: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
        let d = Scalar::from(5u64);
        let shift = |sig: &mut [u8; 64], by: Scalar| {
            let mut s = [0u8; 32];
            s.copy_from_slice(&sig[32..]);
            let s = Scalar::from_canonical_bytes(s).unwrap() + by;
            sig[32..].copy_from_slice(s.as_bytes());
        };
        shift(&mut signatures[1], d);
        shift(&mut signatures[2], -d);
        assert!(!verify_batch(&refs, &signatures, &keys));
    }
}
