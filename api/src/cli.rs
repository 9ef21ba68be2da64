//! The command line, as clap reads it.

use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "isa-ledger",
    version,
    about = "Tamper-evident audit ledger for UK information sharing agreements"
)]
pub struct Cli {
    /// Directory holding the ledger key, partner keys and (without --database-url) the SQLite store.
    #[arg(
        long,
        global = true,
        default_value = "./isa-ledger-data",
        env = "ISA_LEDGER_DATA_DIR"
    )]
    pub data_dir: PathBuf,

    /// PostgreSQL URL; when given, the log is stored there instead of in SQLite.
    #[arg(long, global = true, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create the data directory, the ledger key and the store, and write the genesis entry.
    Init {
        /// The log's name: the checkpoint origin and the ledger key's name.
        #[arg(long, default_value = "isa-ledger.local/partnership")]
        origin: String,
    },
    /// Manage partner signing keys (each change is an entry in the log).
    #[command(subcommand)]
    Key(KeyCommand),
    /// Write the log, its latest checkpoint and its keys for offline verification.
    Export {
        #[arg(long)]
        out: PathBuf,
    },
    /// Verify an export offline; exit 0 only if everything holds.
    Verify {
        /// The export directory.
        dir: PathBuf,
        /// An older signed checkpoint you kept; the export must be consistent with it.
        #[arg(long)]
        trusted_checkpoint: Option<PathBuf>,
    },
    /// Submit one domain command (JSON, from a file or stdin) on behalf of a partner, signed
    /// with its custodial key; prints the receipts, or the rule that refused it.
    Append {
        /// The acting partner (its current custodial key signs).
        #[arg(long = "as", value_name = "PARTNER")]
        partner: String,
        /// The command file; `-` or absent reads stdin.
        #[arg(long)]
        file: Option<PathBuf>,
        /// Makes a retry safe; by default derived from the command's bytes.
        #[arg(long)]
        idempotency_key: Option<String>,
    },
    /// Seed the demo partnership (seven partners, agreements, a meeting, requests,
    /// disclosures, consent, a rectification, a SAR, two breaches, retention) into the log.
    Demo,
    /// Work out one deadline by hand (no data directory needed), e.g.
    /// `isa-ledger due sar --from 2025-01-31 --extended`.
    Due {
        /// breach | sar | sar-part3 | foi | eir | complaint
        rule: String,
        /// breach: when the controller became aware (RFC 3339); otherwise the day received
        /// (YYYY-MM-DD).
        #[arg(long)]
        from: String,
        /// Whose bank holidays count (SAR and complaints; FOI and EIR use all the UK's).
        #[arg(long, default_value = "england-and-wales")]
        division: String,
        /// SAR: the day the identity evidence arrived, if after the request.
        #[arg(long, value_name = "DATE")]
        identity_received: Option<String>,
        /// SAR: the day the fee arrived, if after the request.
        #[arg(long, value_name = "DATE")]
        fee_received: Option<String>,
        /// SAR: a clarification pause, FROM..TO, both days included; may repeat.
        #[arg(long, value_name = "FROM..TO")]
        paused: Vec<String>,
        /// SAR: the three-month extension; EIR: 40 working days.
        #[arg(long)]
        extended: bool,
        /// sar-part3: count from the day after receipt (the default is the day itself).
        #[arg(long)]
        part3_day_after: bool,
        /// Print one JSON object instead of the sentence.
        #[arg(long)]
        json: bool,
    },
    /// What is due and overdue across the views: breach reports, SARs, FOI and EIR
    /// requests, complaint acknowledgements, retention reviews, notices, agreement reviews.
    /// Brings the views up to date first.
    Deadlines {
        /// The moment to judge "overdue" at: an RFC 3339 instant, or a date (its start,
        /// London time). Default: now.
        #[arg(long)]
        at: Option<String>,
        /// Only what this partner must act on.
        #[arg(long)]
        partner: Option<String>,
        /// One JSON array instead of the table.
        #[arg(long)]
        json: bool,
    },
    /// Rebuild a view (or every view) from entry 0 into a shadow table and swap it in.
    Rebuild {
        /// breaches | sars | foi | complaints | retention | notices | disclosures |
        /// consents | agreements; all when absent.
        view: Option<String>,
    },
    /// Where each view stands: entries behind the log, lag, and whether it stopped.
    Views {
        #[arg(long)]
        json: bool,
    },
    /// Run the HTTP service (REST API v1). On first start it creates the data directory
    /// and prints a one-time administrator token.
    Serve(ServeArgs),
    /// Append synthetic partner-signed events through the real pipeline and report throughput.
    Bench {
        #[arg(long, default_value_t = 100_000)]
        events: u64,
        #[arg(long, default_value_t = 64)]
        concurrency: u64,
        /// Also follow the log with the views while appending, and report their lag.
        #[arg(long)]
        follow: bool,
        /// Load a running `isa-ledger serve` at this base URL over HTTP instead: each
        /// client POSTs commands to /v1/commands; reports appends/s and latency.
        #[arg(long)]
        http: Option<String>,
        /// With --http: a bearer token of a practitioner or DPO of --partner.
        #[arg(long, env = "ISA_LEDGER_TOKEN", hide_env_values = true)]
        token: Option<String>,
        /// With --http: the partner the commands act for.
        #[arg(long, default_value = "police")]
        partner: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Register a partner key. Without --public-key the service generates and holds it (custodial).
    Add {
        partner: String,
        /// A partner-held key: its verifier key text `name+hexid+base64`.
        #[arg(long, requires = "possession")]
        public_key: Option<String>,
        /// The partner key's signature (base64) over the proof-of-possession message.
        #[arg(long)]
        possession: Option<String>,
    },
    /// Replace a partner's current custodial key with a newly generated one.
    Rotate { partner: String },
    /// Revoke a partner key: no entry from the revoking entry on may be signed with it.
    Revoke {
        partner: String,
        key_id: String,
        #[arg(long)]
        reason: String,
    },
    /// Replace the ledger key (the one that signs checkpoints), logged as LedgerKeyRotated.
    RotateLedger,
    /// List every key with its validity range.
    List,
}

/// `serve`'s settings; each may also come from its variable or from the TOML file (in
/// that order of precedence after the flag).
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// HOST:PORT to listen on (port 0: any free port) [default: 127.0.0.1:8080]
    #[arg(long, env = "ISA_LEDGER_LISTEN")]
    pub listen: Option<String>,
    /// A TOML file with any of: listen, body_limit, request_timeout, rate_limit,
    /// rate_burst, webhook_backoff_ms, webhook_attempts, demo.
    #[arg(long, env = "ISA_LEDGER_CONFIG")]
    pub config: Option<PathBuf>,
    /// Largest request body, bytes [default: 1048576]
    #[arg(long, env = "ISA_LEDGER_BODY_LIMIT")]
    pub body_limit: Option<usize>,
    /// Seconds before a request is abandoned with 503 [default: 30]
    #[arg(long, env = "ISA_LEDGER_REQUEST_TIMEOUT")]
    pub request_timeout: Option<u64>,
    /// Requests a second per token, sustained [default: 5000]
    #[arg(long, env = "ISA_LEDGER_RATE_LIMIT")]
    pub rate_limit: Option<u32>,
    /// Requests per token allowed in a burst above the rate [default: 10000]
    #[arg(long, env = "ISA_LEDGER_RATE_BURST")]
    pub rate_burst: Option<u32>,
    /// Milliseconds before a failed webhook delivery is retried; each later retry waits
    /// four times longer [default: 5000]
    #[arg(long, env = "ISA_LEDGER_WEBHOOK_BACKOFF_MS")]
    pub webhook_backoff_ms: Option<u64>,
    /// Attempts per webhook delivery before it is marked failed [default: 8]
    #[arg(long, env = "ISA_LEDGER_WEBHOOK_ATTEMPTS")]
    pub webhook_attempts: Option<u32>,
    /// Seed the demo partnership into a new log, so the service starts populated.
    #[arg(long, env = "ISA_LEDGER_DEMO", num_args = 0..=1, default_missing_value = "true")]
    pub demo: Option<bool>,
    /// The log's name, if this start creates it.
    #[arg(long, default_value = "isa-ledger.local/partnership")]
    pub origin: String,
}
