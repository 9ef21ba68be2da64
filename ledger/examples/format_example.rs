//! The worked example of docs/ledger-format.md, built with the ledger crate's public API
//! from fixed seeds, a fixed salt and fixed timestamps. Ed25519 signatures are
//! deterministic (RFC 8032), so every byte this prints is reproducible:
//!
//! ```text
//! cargo run -p ledger --example format_example                 # print the example
//! cargo run -p ledger --example format_example -- DIR          # also write DIR/export-3 and DIR/export-4
//! cargo run -p ledger --example format_example -- --pipeline DIR [EVENTS]
//!     # a real pipeline export in DIR and an older checkpoint in DIR.trusted (not reproducible)
//! cargo run -p ledger --example format_example -- --verify DIR [TRUSTED_CHECKPOINT_FILE]
//!     # run the reference auditor on any export
//! ```
//!
//! It builds a three-entry log — `LedgerInitialised`, `PartnerKeyRegistered` and a
//! partner's `DisclosureMade` with redactable content — prints every intermediate value,
//! then a fourth entry that redacts the third's content, and checks both exports with
//! the reference auditor ([`ledger::audit::verify_export`]).

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use ledger::audit;
use ledger::canonical;
use ledger::checkpoint::Checkpoint;
use ledger::entry::{self, Content, Sequencing, SignedSubmission, Submission, LEDGER_AUTHOR};
use ledger::hash::Hash;
use ledger::keyring::{self, Keyring};
use ledger::keys::SignerKey;
use ledger::merkle::{self, Frontier, NodeId, ProofPlan};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::error::Error;
use std::path::{Path, PathBuf};

type Result<T> = std::result::Result<T, Box<dyn Error>>;

const ORIGIN: &str = "isa-ledger.example/lancashire-csp";
const PARTNER: &str = "lancs-police";
const LEDGER_SEED: [u8; 32] = [0x11; 32];
const PARTNER_SEED: [u8; 32] = [0x22; 32];

/// The salt of the redactable content: bytes 0x00, 0x01, ..., 0x1f.
fn fixed_salt() -> [u8; 32] {
    let mut salt = [0u8; 32];
    for (i, b) in salt.iter_mut().enumerate() {
        *b = i as u8;
    }
    salt
}

/// One entry as the sequencer makes it, with what the example prints about it.
struct Built {
    signed: SignedSubmission,
    bytes: Vec<u8>,
    hash: Hash,
    leaf: Hash,
    content: Option<Content>,
}

/// The operator's idempotency key, as `Ledger::operator_submission` makes it.
fn operator_idempotency_key(event_type: &str, payload: &Value) -> String {
    format!(
        "{event_type}/{}",
        Hash::of(payload.to_string().as_bytes()).to_hex()
    )
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Sequences `signed` as entry `seq`, printing every step.
fn sequence(
    title: &str,
    signed: SignedSubmission,
    content: Option<Content>,
    seq: u64,
    prev: &Hash,
    recorded_at: &str,
    stream_version: u64,
) -> Built {
    let bytes = entry::entry_bytes(
        &Sequencing {
            seq,
            prev,
            recorded_at,
            stream_version,
        },
        &signed,
    );
    let hash = Hash::of(&bytes);
    let leaf = entry::entry_leaf(&hash);
    println!("=== entry {seq}: {title}");
    println!("submission JCS ({} bytes):", signed.canonical().len());
    println!("{}", text(signed.canonical()));
    println!("submission hash   = {}", signed.hash().to_hex());
    println!("signing message   = {}", hex::encode(signed.message()));
    println!("author signature  = {}", BASE64.encode(signed.signature()));
    println!("entry JCS ({} bytes):", bytes.len());
    println!("{}", text(&bytes));
    println!("entry hash        = {}", hash.to_hex());
    println!("leaf hash         = {}", leaf.to_hex());
    println!();
    Built {
        signed,
        bytes,
        hash,
        leaf,
        content,
    }
}

/// Writes an export directory exactly as `ledger::export::export` lays it out.
fn write_export(
    dir: &Path,
    lines: &[Vec<u8>],
    note: &str,
    keys_jsonl: &[u8],
    vkey: &str,
) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut entries = Vec::new();
    for line in lines {
        entries.extend_from_slice(line);
        entries.push(b'\n');
    }
    std::fs::write(dir.join("entries.jsonl"), entries)?;
    std::fs::write(dir.join("checkpoint"), note)?;
    std::fs::write(dir.join("keys.jsonl"), keys_jsonl)?;
    std::fs::write(dir.join("ledger.vkey"), format!("{vkey}\n"))?;
    Ok(())
}

fn keys_jsonl(ring: &Keyring) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    for record in ring.records() {
        canonical::write_canonical(&serde_json::to_value(record)?, &mut out)?;
        out.push(b'\n');
    }
    Ok(out)
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--pipeline") {
        let dir = args.get(1).ok_or("--pipeline needs an output directory")?;
        let events = args.get(2).map(|n| n.parse()).transpose()?.unwrap_or(200);
        return pipeline_export(Path::new(dir), events);
    }
    if args.first().map(String::as_str) == Some("--verify") {
        let dir = args.get(1).ok_or("--verify needs an export directory")?;
        let trusted = args.get(2).map(std::fs::read_to_string).transpose()?;
        return match audit::verify_export(Path::new(dir), trusted.as_deref(), &mut ()) {
            Ok(r) => {
                println!(
                    "OK origin={} entries={} root={} keys={} redacted={} consistent_with={:?}",
                    r.origin, r.entries, r.root, r.keys, r.redacted, r.consistent_with
                );
                Ok(())
            }
            Err(e) => {
                println!("FAIL {e}");
                std::process::exit(1);
            }
        };
    }
    let out_dir = args.first().map(PathBuf::from);

    let ledger_key = SignerKey::from_seed(ORIGIN, LEDGER_SEED)?;
    let partner_key = SignerKey::from_seed(PARTNER, PARTNER_SEED)?;
    let lv = ledger_key.verifier();
    let pv = partner_key.verifier();

    println!("=== keys");
    println!("ledger key seed       = {}", hex::encode(LEDGER_SEED));
    println!("ledger public key     = {}", hex::encode(lv.key.as_bytes()));
    println!(
        "ledger key id input   = {}",
        hex::encode([ORIGIN.as_bytes(), b"\n\x01", lv.key.as_bytes()].concat())
    );
    println!("ledger key id         = {}", lv.id_hex());
    println!("ledger.vkey           = {lv}");
    let mut secret = vec![0x01u8];
    secret.extend_from_slice(&LEDGER_SEED);
    println!(
        "ledger signer key     = PRIVATE+KEY+{ORIGIN}+{}+{}",
        lv.id_hex(),
        BASE64.encode(&secret)
    );
    println!("partner key seed      = {}", hex::encode(PARTNER_SEED));
    println!("partner public key    = {}", hex::encode(pv.key.as_bytes()));
    println!("partner key id        = {}", pv.id_hex());
    println!("partner verifier key  = {pv}");
    println!();

    let mut ring = Keyring::new(ORIGIN);
    let mut frontier = Frontier::new();
    let mut nodes: HashMap<NodeId, Hash> = HashMap::new();
    let mut built: Vec<Built> = Vec::new();
    let mut push =
        |b: &Built, ring: &mut Keyring, frontier: &mut Frontier, seq: u64| -> Result<()> {
            ring.check(seq, b.signed.submission())?;
            ring.apply(seq, b.signed.submission())?;
            nodes.insert(
                NodeId {
                    level: 0,
                    index: seq,
                },
                b.leaf,
            );
            frontier.push(b.leaf, |id, h| {
                nodes.insert(id, h);
            });
            Ok(())
        };

    // Entry 0: the genesis entry, signed by the ledger key it registers.
    let payload = json!({ "ledger_key": lv.to_string() });
    let genesis = Submission {
        author: LEDGER_AUTHOR.into(),
        content_commitment: None,
        event_type: keyring::LEDGER_INITIALISED.into(),
        event_version: 1,
        idempotency_key: operator_idempotency_key(keyring::LEDGER_INITIALISED, &payload),
        key_id: lv.id_hex(),
        occurred_at: "2026-11-23T09:00:00.000000Z".into(),
        origin: ORIGIN.into(),
        payload,
        redacts: vec![],
        stream: "ledger".into(),
    };
    let b0 = sequence(
        "LedgerInitialised",
        SignedSubmission::sign(genesis, &ledger_key)?,
        None,
        0,
        &Hash::ZERO,
        "2026-11-23T09:00:00.000000Z",
        1,
    );
    push(&b0, &mut ring, &mut frontier, 0)?;
    built.push(b0);

    // Entry 1: the operator registers the partner's key, with its proof of possession.
    let possession_message = keyring::possession_message(&pv.to_string(), ORIGIN);
    let possession = partner_key.sign(&possession_message);
    println!("=== proof of possession for {PARTNER}'s key");
    println!("message (hex)     = {}", hex::encode(&possession_message));
    println!("message (text)    = {:?}", text(&possession_message));
    println!(
        "signature         = {}",
        BASE64.encode(possession.to_bytes())
    );
    println!();
    let payload = json!({
        "partner": PARTNER,
        "key_id": pv.id_hex(),
        "public_key": pv.public_base64(),
        "custody": "partner-held",
        "proof_of_possession": BASE64.encode(possession.to_bytes()),
    });
    let register = Submission {
        author: LEDGER_AUTHOR.into(),
        content_commitment: None,
        event_type: keyring::PARTNER_KEY_REGISTERED.into(),
        event_version: 1,
        idempotency_key: operator_idempotency_key(keyring::PARTNER_KEY_REGISTERED, &payload),
        key_id: lv.id_hex(),
        occurred_at: "2026-11-23T09:05:00.000000Z".into(),
        origin: ORIGIN.into(),
        payload,
        redacts: vec![],
        stream: format!("partner-keys/{PARTNER}"),
    };
    let prev = built[0].hash;
    let b1 = sequence(
        "PartnerKeyRegistered",
        SignedSubmission::sign(register, &ledger_key)?,
        None,
        1,
        &prev,
        "2026-11-23T09:05:00.000250Z",
        1,
    );
    push(&b1, &mut ring, &mut frontier, 1)?;
    built.push(b1);

    // Entry 2: the partner's own DisclosureMade, with redactable content.
    let content = Content {
        salt: BASE64.encode(fixed_salt()),
        body: json!({
            "rationale": "Risk of significant harm to a child \u{2014} strategy meeting \"S-4\" agreed\nto share.",
        }),
    };
    let body_jcs = canonical::to_canonical(&content.body)?;
    let commitment = content.commitment()?;
    println!("=== redactable content of entry 2");
    println!("salt (base64)     = {}", content.salt);
    println!("salt (hex)        = {}", hex::encode(fixed_salt()));
    println!("body JCS ({} bytes):", body_jcs.len());
    println!("{}", text(&body_jcs));
    println!("body JCS (hex)    = {}", hex::encode(&body_jcs));
    println!("commitment        = {}", commitment.to_hex());
    println!();
    let disclosure = Submission {
        author: PARTNER.into(),
        content_commitment: Some(commitment.to_hex()),
        event_type: "DisclosureMade".into(),
        event_version: 1,
        idempotency_key: "lancs-police/disclosure/2026-0042".into(),
        key_id: pv.id_hex(),
        occurred_at: "2026-11-23T09:30:00Z".into(),
        origin: ORIGIN.into(),
        payload: json!({
            "agreement": "isa/lancashire-mash/3",
            "channel": "secure-email",
            "classification": "OFFICIAL-SENSITIVE",
            "lawful_basis": ["UK GDPR Art 6(1)(e)", "DPA 2018 Sch 1 para 18"],
            "recipients": ["blackpool-council"],
            "retention_days": 2190,
            "subjects": ["3f1c9a5e0b7d2c4a6e8f1b3d5c7a9e0f2b4d6c8a0e1f3b5d7c9a2e4f6b8d0c1a"],
        }),
        redacts: vec![],
        stream: "disclosure/2026-0042".into(),
    };
    let prev = built[1].hash;
    let b2 = sequence(
        "DisclosureMade (partner-signed, with redactable content)",
        SignedSubmission::sign(disclosure, &partner_key)?,
        Some(content),
        2,
        &prev,
        "2026-11-23T09:31:02.123456Z",
        1,
    );
    push(&b2, &mut ring, &mut frontier, 2)?;
    built.push(b2);

    // The tree of size 3 and its checkpoint.
    println!("=== Merkle tree of size 3");
    let l = |i: usize| built[i].leaf;
    let n01 = merkle::node_hash(&l(0), &l(1));
    println!(
        "node(0..2) = SHA-256(01 || leaf0 || leaf1) = {}",
        n01.to_hex()
    );
    let root3 = merkle::node_hash(&n01, &l(2));
    println!(
        "root(0..3) = SHA-256(01 || node(0..2) || leaf2) = {}",
        root3.to_hex()
    );
    assert_eq!(root3, frontier.root());
    println!("root (base64)     = {}", root3.to_base64());
    println!("empty tree root   = {}", merkle::empty_root().to_hex());
    println!();
    let cp3 = Checkpoint {
        origin: ORIGIN.into(),
        size: 3,
        root: root3,
    };
    // The checkpoint of size n is signed by the ledger key valid for seq n.
    let signer = ring.ledger_key_for(3).ok_or("no ledger key for size 3")?;
    assert_eq!(signer, lv);
    let note3 = cp3.sign(&ledger_key).to_string();
    println!("=== checkpoint body (the signed message), hex");
    println!("{}", hex::encode(cp3.body()));
    println!("=== signed checkpoint note (file `checkpoint`)");
    print!("{note3}");
    println!("=== end of note");
    println!();

    let lines3: Vec<Vec<u8>> = built
        .iter()
        .map(|b| entry::export_line(&b.bytes, b.content.as_ref()))
        .collect::<std::result::Result<_, _>>()?;
    let keys3 = keys_jsonl(&ring)?;
    println!("=== export of size 3");
    println!("--- entries.jsonl");
    for line in &lines3 {
        println!("{}", text(line));
    }
    println!("--- keys.jsonl");
    print!("{}", text(&keys3));
    println!("--- ledger.vkey");
    println!("{lv}");
    println!();

    // Entry 3: the partner disposes of entry 2's content; the export then omits it.
    let dispose = Submission {
        author: PARTNER.into(),
        content_commitment: None,
        event_type: "RecordDisposed".into(),
        event_version: 1,
        idempotency_key: "lancs-police/dispose/2026-0042".into(),
        key_id: pv.id_hex(),
        occurred_at: "2032-11-23T10:00:00Z".into(),
        origin: ORIGIN.into(),
        payload: json!({ "method": "secure-delete", "reason": "retention period ended" }),
        redacts: vec![2],
        stream: "disclosure/2026-0042".into(),
    };
    let prev = built[2].hash;
    let b3 = sequence(
        "RecordDisposed (redacts entry 2)",
        SignedSubmission::sign(dispose, &partner_key)?,
        None,
        3,
        &prev,
        "2032-11-23T10:00:01.000000Z",
        2,
    );
    push(&b3, &mut ring, &mut frontier, 3)?;
    built.push(b3);
    built[2].content = None;
    let root4 = frontier.root();
    let cp4 = Checkpoint {
        origin: ORIGIN.into(),
        size: 4,
        root: root4,
    };
    let note4 = cp4.sign(&ledger_key).to_string();
    let proof = ProofPlan::consistency(3, 4)?.assemble(&nodes)?;
    merkle::verify_consistency(3, 4, &proof, &root3.0, &root4.0)?;
    let lines4: Vec<Vec<u8>> = built
        .iter()
        .map(|b| entry::export_line(&b.bytes, b.content.as_ref()))
        .collect::<std::result::Result<_, _>>()?;
    let keys4 = keys_jsonl(&ring)?;
    println!("=== export of size 4 (entry 2's content redacted by entry 3)");
    println!(
        "root(0..4) = SHA-256(01 || node(0..2) || SHA-256(01 || leaf2 || leaf3)) = {}",
        root4.to_hex()
    );
    println!("consistency proof 3 -> 4 (base64):");
    for h in &proof {
        println!("  {}", h.to_base64());
    }
    println!("--- checkpoint");
    print!("{note4}");
    println!("--- entries.jsonl line 3 (entry 2, content gone, entry bytes unchanged)");
    println!("{}", text(&lines4[2]));
    println!("--- entries.jsonl line 4");
    println!("{}", text(&lines4[3]));
    println!();

    // Check both exports with the reference auditor.
    let scratch;
    let base = match &out_dir {
        Some(dir) => dir.clone(),
        None => {
            scratch = tempfile::tempdir()?;
            scratch.path().to_path_buf()
        }
    };
    let vkey = lv.to_string();
    write_export(&base.join("export-3"), &lines3, &note3, &keys3, &vkey)?;
    write_export(&base.join("export-4"), &lines4, &note4, &keys4, &vkey)?;
    let r3 = audit::verify_export(&base.join("export-3"), None, &mut ())?;
    let r4 = audit::verify_export(&base.join("export-4"), Some(&note3), &mut ())?;
    println!("=== reference audit");
    println!(
        "export-3: ok, {} entries, root {}, {} keys, {} redacted",
        r3.entries, r3.root, r3.keys, r3.redacted
    );
    println!(
        "export-4: ok, {} entries, root {}, {} keys, {} redacted, consistent with trusted size {:?}",
        r4.entries, r4.root, r4.keys, r4.redacted, r4.consistent_with
    );
    if let Some(dir) = &out_dir {
        eprintln!(
            "wrote {} and {}",
            dir.join("export-3").display(),
            dir.join("export-4").display()
        );
    }
    Ok(())
}

/// Runs the real append pipeline on a fresh SQLite file (random ledger and partner
/// keys, wall-clock timestamps) and exports it with `ledger::export::export`: a genesis
/// entry, a partner key registration, `events` partner disclosures with redactable
/// content, a rotation of the partner's key, and a redaction. Not reproducible; for
/// testing independent verifiers against real pipeline output.
fn pipeline_export(dir: &Path, events: u64) -> Result<()> {
    use ledger::keyring::Custody;
    use ledger::pipeline::{AppendRequest, ExpectedVersion, Ledger, PipelineConfig};
    use ledger::store::sqlite::SqliteStore;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let db = tempfile::tempdir()?;
        let store = SqliteStore::open(&db.path().join("ledger.db")).await?;
        let ledger_key = SignerKey::generate(ORIGIN)?;
        let ledger = Ledger::init(store.clone(), ledger_key, PipelineConfig::default()).await?;
        let mut partner = SignerKey::generate(PARTNER)?;
        let proof = partner.sign(&keyring::possession_message(
            &partner.verifier().to_string(),
            ORIGIN,
        ));
        ledger
            .register_partner_key(partner.verifier(), Custody::PartnerHeld, &proof)
            .await?;
        let mut tasks = Vec::new();
        let mut first_with_content = None;
        let mut trusted: Option<(u64, String)> = None;
        for i in 0..events {
            if i == events / 2 {
                // Rotate the partner's key half way; later entries use the new key.
                for t in tasks.drain(..) {
                    let receipt: ledger::pipeline::Receipt = t.await??;
                    first_with_content.get_or_insert(receipt.seq);
                }
                let next = SignerKey::generate(PARTNER)?;
                let proof = next.sign(&keyring::possession_message(
                    &next.verifier().to_string(),
                    ORIGIN,
                ));
                ledger
                    .rotate_partner_key(
                        &partner.verifier().id_hex(),
                        next.verifier(),
                        Custody::PartnerHeld,
                        &proof,
                    )
                    .await?;
                partner = next;
                trusted = ledger.latest_checkpoint().await?;
            }
            let content = Content::new(
                json!({ "rationale": format!("rationale \u{2014} \"case\" {i}\nline two") }),
            )?;
            let submission = Submission {
                author: PARTNER.into(),
                content_commitment: Some(content.commitment()?.to_hex()),
                event_type: "DisclosureMade".into(),
                event_version: 1,
                idempotency_key: format!("req-{i}"),
                key_id: partner.verifier().id_hex(),
                occurred_at: "2026-11-23T09:30:00.5Z".into(),
                origin: ORIGIN.into(),
                payload: json!({ "recipients": ["blackpool-council"], "n": i, "neg": -(i as i64) }),
                redacts: vec![],
                stream: format!("disclosure/{}", i % 7),
            };
            let request = AppendRequest {
                submission: SignedSubmission::sign(submission, &partner)?,
                expected: ExpectedVersion::Any,
                content: Some(content),
            };
            let l = ledger.clone();
            tasks.push(tokio::spawn(async move { l.append(request).await }));
        }
        for t in tasks {
            t.await??;
        }
        if let Some(target) = first_with_content {
            let submission = Submission {
                author: PARTNER.into(),
                content_commitment: None,
                event_type: "RecordDisposed".into(),
                event_version: 1,
                idempotency_key: "dispose-1".into(),
                key_id: partner.verifier().id_hex(),
                occurred_at: "2032-11-23T10:00:00Z".into(),
                origin: ORIGIN.into(),
                payload: json!({ "method": "secure-delete" }),
                redacts: vec![target],
                stream: "disposals".into(),
            };
            ledger
                .append(AppendRequest {
                    submission: SignedSubmission::sign(submission, &partner)?,
                    expected: ExpectedVersion::NoStream,
                    content: None,
                })
                .await?;
        }
        let summary =
            ledger::export::export(ledger.store(), ledger.chain_id(), ORIGIN, dir).await?;
        let report = audit::verify_export(dir, None, &mut ())?;
        println!(
            "pipeline export in {}: {} entries, {} keys; reference audit ok, root {}, {} redacted",
            dir.display(),
            summary.entries,
            summary.keys,
            report.root,
            report.redacted
        );
        if let Some((size, note)) = trusted {
            // An older checkpoint, as an auditor would have kept it: DIR.trusted
            let mut path = dir.as_os_str().to_owned();
            path.push(".trusted");
            std::fs::write(&path, &note)?;
            let report = audit::verify_export(dir, Some(&note), &mut ())?;
            println!(
                "older checkpoint of size {size} in {}; reference audit with it: consistent with {:?}",
                Path::new(&path).display(),
                report.consistent_with
            );
        }
        Ok(())
    })
}
