//! Checkpoints: the C2SP `tlog-checkpoint` body (origin, tree size, root hash) carried in a
//! C2SP `signed-note`, signed by the ledger key. Witnesses and other transparency-log
//! tooling read these unchanged.
//!
//! ```text
//! isa-ledger.example/lancashire-csp
//! 1024
//! 6Kh8l9mVbUXzRLBUH9LDTRbAMPNQo0Hd6x8x0y2yZ0c=
//!
//! — isa-ledger.example/lancashire-csp Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=
//! ```

use crate::hash::Hash;
use crate::keys::{SignerKey, VerifierKey};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use ed25519_dalek::Signature;

/// The prefix of every signature line: an em dash (U+2014) and a space.
const SIGNATURE_PREFIX: &str = "\u{2014} ";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    #[error("the note has no blank line separating its text from its signatures")]
    NoSignatureBlock,
    #[error("signature line {0:?} is malformed")]
    BadSignatureLine(String),
    #[error("checkpoint body is malformed: {0}")]
    BadBody(String),
    #[error("no signature by {0} on the checkpoint")]
    Unsigned(String),
    #[error("the signature by {0} on the checkpoint does not verify")]
    BadSignature(String),
}

/// The body of a checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub origin: String,
    pub size: u64,
    pub root: Hash,
}

impl Checkpoint {
    /// The note text: three lines, each ending in a newline.
    pub fn body(&self) -> String {
        format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            self.root.to_base64()
        )
    }

    /// Parses a checkpoint body. Extension lines after the root are ignored, as C2SP allows.
    pub fn parse_body(text: &str) -> Result<Checkpoint, CheckpointError> {
        let bad = |why: &str| CheckpointError::BadBody(why.to_string());
        let Some(text) = text.strip_suffix('\n') else {
            return Err(bad("it does not end in a newline"));
        };
        let mut lines = text.split('\n');
        let origin = lines
            .next()
            .filter(|l| !l.is_empty())
            .ok_or(bad("no origin line"))?;
        let size_line = lines.next().ok_or(bad("no tree size line"))?;
        // Decimal without sign or leading zeros, so that each size has one spelling.
        if size_line.is_empty()
            || !size_line.bytes().all(|b| b.is_ascii_digit())
            || (size_line.len() > 1 && size_line.starts_with('0'))
        {
            return Err(bad("the tree size is not a plain decimal number"));
        }
        let size = size_line
            .parse()
            .map_err(|_| bad("the tree size is too large"))?;
        let root = lines
            .next()
            .and_then(Hash::from_base64)
            .ok_or(bad("the root hash is not 32 bytes of base64"))?;
        if lines.any(|l| l.is_empty()) {
            return Err(bad("an extension line is empty"));
        }
        Ok(Checkpoint {
            origin: origin.to_string(),
            size,
            root,
        })
    }

    /// Signs the body with the ledger key and returns the signed note text.
    pub fn sign(&self, key: &SignerKey) -> SignedNote {
        let text = self.body();
        let signature = key.sign(text.as_bytes());
        SignedNote {
            text,
            signatures: vec![NoteSignature {
                name: key.name().to_string(),
                key_id: key.verifier().id,
                signature: signature.to_bytes().to_vec(),
            }],
        }
    }
}

/// One signature line of a note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteSignature {
    pub name: String,
    pub key_id: [u8; 4],
    pub signature: Vec<u8>,
}

/// A C2SP signed note: text, a blank line, and signature lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedNote {
    pub text: String,
    pub signatures: Vec<NoteSignature>,
}

impl SignedNote {
    pub fn parse(note: &str) -> Result<SignedNote, CheckpointError> {
        let split = note
            .rfind("\n\n")
            .ok_or(CheckpointError::NoSignatureBlock)?;
        let text = &note[..=split];
        let block = &note[split + 2..];
        let Some(block) = block.strip_suffix('\n') else {
            return Err(CheckpointError::BadSignatureLine(block.to_string()));
        };
        let mut signatures = Vec::new();
        for line in block.split('\n') {
            let bad = || CheckpointError::BadSignatureLine(line.to_string());
            let rest = line.strip_prefix(SIGNATURE_PREFIX).ok_or_else(bad)?;
            let (name, b64) = rest.split_once(' ').ok_or_else(bad)?;
            let raw = BASE64.decode(b64).map_err(|_| bad())?;
            if name.is_empty() || name.contains('+') || raw.len() < 5 {
                return Err(bad());
            }
            signatures.push(NoteSignature {
                name: name.to_string(),
                key_id: [raw[0], raw[1], raw[2], raw[3]],
                signature: raw[4..].to_vec(),
            });
        }
        Ok(SignedNote {
            text: text.to_string(),
            signatures,
        })
    }

    /// Checks the signature by `key` (matched by name and key id) and parses the body.
    pub fn verify_checkpoint(&self, key: &VerifierKey) -> Result<Checkpoint, CheckpointError> {
        let line = self
            .signatures
            .iter()
            .find(|s| s.name == key.name && s.key_id == key.id)
            .ok_or_else(|| CheckpointError::Unsigned(key.to_string()))?;
        let signature = Signature::from_slice(&line.signature)
            .map_err(|_| CheckpointError::BadSignature(key.to_string()))?;
        if !key.verify(self.text.as_bytes(), &signature) {
            return Err(CheckpointError::BadSignature(key.to_string()));
        }
        Checkpoint::parse_body(&self.text)
    }
}

impl std::fmt::Display for SignedNote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)?;
        f.write_str("\n")?;
        for s in &self.signatures {
            let mut raw = s.key_id.to_vec();
            raw.extend_from_slice(&s.signature);
            writeln!(f, "{SIGNATURE_PREFIX}{} {}", s.name, BASE64.encode(raw))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> SignerKey {
        SignerKey::from_seed("example.org/log", [9; 32]).unwrap()
    }

    #[test]
    fn signed_checkpoint_round_trips_and_verifies() {
        let cp = Checkpoint {
            origin: "example.org/log".into(),
            size: 42,
            root: Hash::of(b"root"),
        };
        let note = cp.sign(&key()).to_string();
        assert!(note.starts_with("example.org/log\n42\n"));
        assert!(note.contains("\n\n\u{2014} example.org/log "));
        let parsed = SignedNote::parse(&note).unwrap();
        assert_eq!(parsed.verify_checkpoint(key().verifier()).unwrap(), cp);
    }

    #[test]
    fn altered_or_foreign_checkpoints_are_refused() {
        let cp = Checkpoint {
            origin: "example.org/log".into(),
            size: 42,
            root: Hash::of(b"root"),
        };
        let note = cp.sign(&key()).to_string();
        let altered = note.replacen("\n42\n", "\n43\n", 1);
        assert_eq!(
            SignedNote::parse(&altered)
                .unwrap()
                .verify_checkpoint(key().verifier()),
            Err(CheckpointError::BadSignature(key().verifier().to_string()))
        );
        let other = SignerKey::from_seed("example.org/log", [1; 32]).unwrap();
        assert!(matches!(
            SignedNote::parse(&note)
                .unwrap()
                .verify_checkpoint(other.verifier()),
            Err(CheckpointError::Unsigned(_))
        ));
        assert!(SignedNote::parse("no blank line\n").is_err());
    }

    #[test]
    fn body_parsing_is_strict() {
        let root = Hash::of(b"r").to_base64();
        assert!(Checkpoint::parse_body(&format!("o\n007\n{root}\n")).is_err());
        assert!(Checkpoint::parse_body(&format!("o\n-1\n{root}\n")).is_err());
        assert!(Checkpoint::parse_body(&format!("o\n7\n{root}")).is_err());
        assert!(Checkpoint::parse_body(&format!("o\n7\n{root}\nextension\n")).is_ok());
    }
}
