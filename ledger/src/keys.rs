//! Ed25519 signing identities: the ledger key that signs checkpoints and operator
//! entries, and partner keys that sign submissions. Keys are written in the Go
//! `golang.org/x/mod/sumdb/note` text forms so transparency-log tools read them:
//!
//! - verifier key: `name+hex(key id)+base64(0x01 || public key)`
//! - signer key:   `PRIVATE+KEY+name+hex(key id)+base64(0x01 || seed)`
//!
//! where key id = the first 4 bytes of SHA-256(name || 0x0A || 0x01 || public key).
//! Signer key files are created with mode 0600 and refused if others can read them.

use crate::hash::Hash;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use std::fmt;
use std::io::Write;
use std::path::Path;

/// The Ed25519 algorithm byte of the C2SP signed-note key encodings.
pub const ALG_ED25519: u8 = 0x01;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("key name {0:?} is not usable: it must be 1-64 characters of a-z, 0-9, '.', '-', '_' or '/'")]
    BadName(String),
    #[error("verifier key {0:?} is not of the form name+hexid+base64(0x01||key)")]
    BadVerifierKey(String),
    #[error("the key file {path} is not a signer key (PRIVATE+KEY+name+id+key)")]
    BadSignerKey { path: String },
    #[error("the public key for {0:?} is of small order, so it proves nothing; use a properly generated Ed25519 key")]
    WeakKey(String),
    #[error("key id in {0:?} does not match its name and public key")]
    KeyIdMismatch(String),
    #[error(
        "the key file {path} is readable by group or others (mode {mode:o}); run chmod 600 on it"
    )]
    Permissions { path: String, mode: u32 },
    #[error("the key file {path} already exists; refusing to overwrite a key")]
    Exists { path: String },
    #[error("key file {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// Writes secret material to a new file with mode 0600. Never overwrites: losing a key
/// or a partnership secret by accident cannot be undone.
pub fn write_private(path: &Path, contents: &[u8]) -> Result<(), KeyError> {
    let io = |source| KeyError::Io {
        path: path.display().to_string(),
        source,
    };
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            KeyError::Exists {
                path: path.display().to_string(),
            }
        } else {
            io(e)
        }
    })?;
    file.write_all(contents).map_err(io)?;
    file.sync_all().map_err(io)
}

/// Reads a file of secret material, refusing one that group or others may read.
pub fn read_private(path: &Path) -> Result<String, KeyError> {
    let io = |source| KeyError::Io {
        path: path.display().to_string(),
        source,
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path).map_err(io)?.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(KeyError::Permissions {
                path: path.display().to_string(),
                mode,
            });
        }
    }
    std::fs::read_to_string(path).map_err(io)
}

/// Names of keys (the log origin, partner ids) appear in note signature lines, so they
/// may hold neither spaces nor '+'. We are stricter still, which keeps paths safe too.
pub fn check_key_name(name: &str) -> Result<(), KeyError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-._/".contains(&b))
        && !name.starts_with(['.', '/'])
        && !name.contains("..");
    if ok {
        Ok(())
    } else {
        Err(KeyError::BadName(name.to_string()))
    }
}

/// The C2SP note key id: SHA-256(name || 0x0A || 0x01 || public key)[..4].
pub fn key_id(name: &str, public_key: &[u8; 32]) -> [u8; 4] {
    let digest = Hash::of_parts(&[name.as_bytes(), b"\n", &[ALG_ED25519], public_key]);
    [digest.0[0], digest.0[1], digest.0[2], digest.0[3]]
}

/// A named public key, as a verifier holds it.
#[derive(Clone, PartialEq, Eq)]
pub struct VerifierKey {
    pub name: String,
    pub id: [u8; 4],
    pub key: VerifyingKey,
}

impl VerifierKey {
    pub fn new(name: &str, key: VerifyingKey) -> Result<VerifierKey, KeyError> {
        check_key_name(name)?;
        // A small-order key "verifies" signatures nobody made (the identity point with
        // R = identity and S = 0 verifies over every message): never accept one.
        if key.is_weak() {
            return Err(KeyError::WeakKey(name.to_string()));
        }
        Ok(VerifierKey {
            name: name.to_string(),
            id: key_id(name, key.as_bytes()),
            key,
        })
    }

    /// Parses `name+hexid+base64(0x01||key)`, checking the id against name and key.
    pub fn parse(text: &str) -> Result<VerifierKey, KeyError> {
        let bad = || KeyError::BadVerifierKey(text.to_string());
        // Base64 may itself contain '+', so only the first two '+' separate fields.
        let mut parts = text.splitn(3, '+');
        let (Some(name), Some(id_hex), Some(key_b64)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(bad());
        };
        let raw = BASE64.decode(key_b64).map_err(|_| bad())?;
        let (Some(&ALG_ED25519), Ok(public)) = (
            raw.first(),
            <[u8; 32]>::try_from(raw.get(1..).unwrap_or_default()),
        ) else {
            return Err(bad());
        };
        let key = VerifyingKey::from_bytes(&public).map_err(|_| bad())?;
        let parsed = VerifierKey::new(name, key)?;
        if hex::encode(parsed.id) != id_hex {
            return Err(KeyError::KeyIdMismatch(text.to_string()));
        }
        Ok(parsed)
    }

    pub fn id_hex(&self) -> String {
        hex::encode(self.id)
    }

    pub fn public_base64(&self) -> String {
        BASE64.encode(self.key.as_bytes())
    }

    pub fn verify(&self, message: &[u8], signature: &Signature) -> bool {
        self.key.verify_strict(message, signature).is_ok()
    }
}

impl fmt::Display for VerifierKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut raw = vec![ALG_ED25519];
        raw.extend_from_slice(self.key.as_bytes());
        write!(f, "{}+{}+{}", self.name, self.id_hex(), BASE64.encode(raw))
    }
}

impl fmt::Debug for VerifierKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VerifierKey({self})")
    }
}

/// A named private key. Its `Debug` never shows the secret.
#[derive(Clone)]
pub struct SignerKey {
    verifier: VerifierKey,
    secret: SigningKey,
}

impl fmt::Debug for SignerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SignerKey({}, secret withheld)", self.verifier)
    }
}

impl SignerKey {
    pub fn generate(name: &str) -> Result<SignerKey, KeyError> {
        let secret = SigningKey::generate(&mut rand_core::OsRng);
        SignerKey::from_secret(name, secret)
    }

    /// Derives a key from a 32-byte seed; for deterministic test and benchmark fixtures.
    pub fn from_seed(name: &str, seed: [u8; 32]) -> Result<SignerKey, KeyError> {
        SignerKey::from_secret(name, SigningKey::from_bytes(&seed))
    }

    fn from_secret(name: &str, secret: SigningKey) -> Result<SignerKey, KeyError> {
        Ok(SignerKey {
            verifier: VerifierKey::new(name, secret.verifying_key())?,
            secret,
        })
    }

    pub fn verifier(&self) -> &VerifierKey {
        &self.verifier
    }

    pub fn name(&self) -> &str {
        &self.verifier.name
    }

    pub fn sign(&self, message: &[u8]) -> Signature {
        self.secret.sign(message)
    }

    fn to_text(&self) -> String {
        let mut raw = vec![ALG_ED25519];
        raw.extend_from_slice(self.secret.as_bytes());
        format!(
            "PRIVATE+KEY+{}+{}+{}\n",
            self.verifier.name,
            self.verifier.id_hex(),
            BASE64.encode(raw)
        )
    }

    /// Writes the key to a new file with mode 0600. Never overwrites.
    pub fn write_new(&self, path: &Path) -> Result<(), KeyError> {
        write_private(path, self.to_text().as_bytes())
    }

    /// Reads a signer key file, refusing one that group or others may read.
    pub fn read(path: &Path) -> Result<SignerKey, KeyError> {
        let shown = path.display().to_string();
        let text = read_private(path)?;
        let bad = || KeyError::BadSignerKey {
            path: shown.clone(),
        };
        let text = text.trim_end_matches('\n');
        let fields: Vec<&str> = text.splitn(5, '+').collect();
        let ["PRIVATE", "KEY", name, id_hex, seed_b64] = fields.as_slice() else {
            return Err(bad());
        };
        let raw = BASE64.decode(seed_b64).map_err(|_| bad())?;
        let (Some(&ALG_ED25519), Ok(seed)) = (
            raw.first(),
            <[u8; 32]>::try_from(raw.get(1..).unwrap_or_default()),
        ) else {
            return Err(bad());
        };
        let key = SignerKey::from_seed(name, seed)?;
        if key.verifier.id_hex() != *id_hex {
            return Err(KeyError::KeyIdMismatch(format!("{name}+{id_hex}")));
        }
        Ok(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifier_key_text_round_trips_and_checks_the_id() {
        let key = SignerKey::from_seed("example.org/log", [7; 32]).unwrap();
        let text = key.verifier().to_string();
        assert!(text.starts_with("example.org/log+"));
        assert_eq!(VerifierKey::parse(&text).unwrap(), *key.verifier());
        let other_name = text.replacen("example.org/log", "example.org/other", 1);
        assert!(matches!(
            VerifierKey::parse(&other_name),
            Err(KeyError::KeyIdMismatch(_))
        ));
    }

    #[test]
    fn key_id_follows_the_c2sp_definition() {
        // Recomputed by hand from the definition rather than through `key_id`.
        let key = SignerKey::from_seed("a", [1; 32]).unwrap();
        let mut input = b"a\n\x01".to_vec();
        input.extend_from_slice(key.verifier().key.as_bytes());
        assert_eq!(key.verifier().id, Hash::of(&input).0[..4]);
    }

    #[test]
    fn key_files_are_private_and_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.key");
        let key = SignerKey::generate("partner-a").unwrap();
        key.write_new(&path).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        let back = SignerKey::read(&path).unwrap();
        assert_eq!(back.verifier(), key.verifier());
        assert!(matches!(key.write_new(&path), Err(KeyError::Exists { .. })));
        assert!(!format!("{key:?}").contains(&BASE64.encode(key.secret.as_bytes())));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
            assert!(matches!(
                SignerKey::read(&path),
                Err(KeyError::Permissions { .. })
            ));
        }
    }

    #[test]
    fn truncated_or_padded_key_text_is_an_error_not_a_panic() {
        let key = SignerKey::from_seed("a", [1; 32]).unwrap();
        let id = key.verifier().id_hex();
        for bad in [
            format!("a+{id}+"),
            format!("a+{id}"),
            format!("{}\n", key.verifier()),
            "a".into(),
        ] {
            assert!(VerifierKey::parse(&bad).is_err(), "{bad:?}");
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.key");
        std::fs::write(&path, format!("PRIVATE+KEY+a+{id}+")).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        assert!(matches!(
            SignerKey::read(&path),
            Err(KeyError::BadSignerKey { .. })
        ));
    }

    #[test]
    fn small_order_keys_are_refused() {
        // The identity point (y = 1) as a public key.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        let weak = VerifyingKey::from_bytes(&identity).unwrap();
        assert!(matches!(
            VerifierKey::new("a", weak),
            Err(KeyError::WeakKey(_))
        ));
        let text = format!(
            "a+{}+{}",
            hex::encode(key_id("a", &identity)),
            BASE64.encode([&[1u8][..], &identity].concat())
        );
        assert!(VerifierKey::parse(&text).is_err());
    }

    #[test]
    fn names_with_spaces_or_plus_are_refused() {
        for bad in ["", "a b", "a+b", "A", "../x", "/abs"] {
            assert!(check_key_name(bad).is_err(), "{bad:?}");
        }
        check_key_name("isa-ledger.example/lancashire-csp").unwrap();
    }
}
