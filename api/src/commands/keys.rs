//! `isa-ledger key ...`: partner key registration, rotation, revocation and listing.
//! Every change is an operator entry in the log; custodial private keys are written to
//! the data directory with mode 0600 and never printed.

use crate::cli::KeyCommand;
use crate::datadir::DataDir;
use anyhow::{bail, Context, Result};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use ed25519_dalek::Signature;
use ledger::keyring::{possession_message, Custody};
use ledger::keys::{SignerKey, VerifierKey};
use ledger::pipeline::{Ledger, Receipt};
use ledger::store::AnyStore;
use std::process::ExitCode;

pub async fn run(dir: &DataDir, url: Option<&str>, command: KeyCommand) -> Result<ExitCode> {
    let ledger = super::open_ledger(dir, url).await?;
    match command {
        KeyCommand::Add {
            partner,
            public_key: Some(text),
            possession,
        } => {
            let key = VerifierKey::parse(&text)?;
            if key.name != partner {
                bail!("the public key is named {:?}, not {partner:?}", key.name);
            }
            let possession = decode_signature(possession.as_deref().unwrap_or_default())?;
            let receipt = ledger
                .register_partner_key(&key, Custody::PartnerHeld, &possession)
                .await?;
            report("registered partner-held key", &key, &receipt);
        }
        KeyCommand::Add { partner, .. } => {
            let key = add_custodial(dir, &ledger, &partner, None).await?;
            println!(
                "key file: {}",
                dir.partner_key_path(&partner, &key.id_hex()).display()
            );
        }
        KeyCommand::Rotate { partner } => {
            let current = ledger
                .current_key(&partner)
                .map(|r| r.key_id)
                .with_context(|| format!("{partner} has no current key to rotate"))?;
            add_custodial(dir, &ledger, &partner, Some(&current)).await?;
        }
        KeyCommand::Revoke {
            partner,
            key_id,
            reason,
        } => {
            let receipt = ledger
                .revoke_partner_key(&partner, &key_id, &reason)
                .await?;
            println!(
                "revoked {partner} key {key_id} from entry {} on",
                receipt.seq
            );
        }
        KeyCommand::RotateLedger => rotate_ledger(dir, &ledger).await?,
        KeyCommand::List => {
            for record in ledger.keyring().records() {
                let until = record.until_seq.map_or("current".to_string(), |u| {
                    format!("until entry {u} (exclusive)")
                });
                println!(
                    "{} {} {} from entry {} {}",
                    record.partner,
                    record.key_id,
                    record.custody.as_str(),
                    record.from_seq,
                    until
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Generates the next ledger key, logs the rotation, then swaps the key files. The new
/// key is on disk (as ledger.key.next) before the entry is written, so a crash leaves
/// it recoverable; the old one is kept under retired-ledger-keys/.
async fn rotate_ledger(dir: &DataDir, ledger: &Ledger<AnyStore>) -> Result<()> {
    let next_path = dir.ledger_key_path().with_extension("key.next");
    if next_path.exists() {
        bail!(
            "{} exists: an earlier rotation did not finish. If `key list` shows its key as \
             current, move it to ledger.key; otherwise delete it and retry",
            next_path.display()
        );
    }
    let incoming = SignerKey::generate(ledger.origin())?;
    incoming.write_new(&next_path)?;
    let outgoing = ledger.ledger_verifier();
    let receipt = ledger.rotate_ledger_key(incoming.clone()).await?;
    let retired = dir.retired_ledger_keys();
    std::fs::create_dir_all(&retired).context("creating retired-ledger-keys")?;
    std::fs::rename(
        dir.ledger_key_path(),
        retired.join(format!("{}.key", outgoing.id_hex())),
    )
    .context("retiring the old ledger key")?;
    std::fs::rename(&next_path, dir.ledger_key_path()).context("installing the new ledger key")?;
    std::fs::write(dir.ledger_vkey_path(), format!("{}\n", incoming.verifier()))
        .context("writing ledger.vkey")?;
    println!(
        "rotated the ledger key in entry {}: {} replaces {}",
        receipt.seq,
        incoming.verifier(),
        outgoing
    );
    println!("publish the new ledger.vkey to auditors; checkpoints are now signed with it");
    Ok(())
}

/// Generates a custodial key, registers (or rotates in) it, and only then keeps its file.
/// The partner's current custodial key as this data directory holds it. With
/// `register_if_missing`, a partner with no current key (or one held elsewhere) gets a
/// new custodial key, registered in the log.
pub async fn custodial_key(
    dir: &DataDir,
    ledger: &Ledger<AnyStore>,
    partner: &str,
    register_if_missing: bool,
) -> Result<SignerKey> {
    let current = ledger.current_key(partner).map(|r| r.key_id);
    let held = current
        .as_ref()
        .filter(|id| dir.partner_key_path(partner, id).exists());
    let key_id = match (held, register_if_missing) {
        (Some(id), _) => id.clone(),
        (None, true) => add_custodial(dir, ledger, partner, None).await?.id_hex(),
        (None, false) => match current {
            Some(id) => bail!(
                "{partner}'s current key {id} is not held here ({}); a partner-held key signs its own submissions",
                dir.partner_key_path(partner, &id).display()
            ),
            None => bail!(
                "{partner} has no current key; register one with `isa-ledger key add {partner}`"
            ),
        },
    };
    Ok(SignerKey::read(&dir.partner_key_path(partner, &key_id))?)
}

pub async fn add_custodial(
    dir: &DataDir,
    ledger: &Ledger<AnyStore>,
    partner: &str,
    replacing: Option<&str>,
) -> Result<VerifierKey> {
    let key = SignerKey::generate(partner)?;
    let path = dir.partner_key_path(partner, &key.verifier().id_hex());
    // Written before the entry so a crash cannot leave a registered key without its file.
    key.write_new(&path)?;
    let possession = key.sign(&possession_message(
        &key.verifier().to_string(),
        ledger.origin(),
    ));
    let result = match replacing {
        Some(old) => {
            ledger
                .rotate_partner_key(old, key.verifier(), Custody::Custodial, &possession)
                .await
        }
        None => {
            ledger
                .register_partner_key(key.verifier(), Custody::Custodial, &possession)
                .await
        }
    };
    match result {
        Ok(receipt) => {
            report("registered custodial key", key.verifier(), &receipt);
            Ok(key.verifier().clone())
        }
        Err(e) => {
            let _ = std::fs::remove_file(&path);
            Err(e.into())
        }
    }
}

fn report(what: &str, key: &VerifierKey, receipt: &Receipt) {
    println!("{what} {key} in entry {}", receipt.seq);
}

fn decode_signature(text: &str) -> Result<Signature> {
    let raw = BASE64.decode(text).context("--possession must be base64")?;
    Signature::from_slice(&raw).context("--possession must be a 64-byte Ed25519 signature")
}
