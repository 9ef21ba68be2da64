//! What the service's black-box tests share: the real binary started on a random
//! port, a small HTTP client speaking its API, and checks of problem documents.

use reqwest::{Client, Method, StatusCode};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `isa-ledger serve`.
pub struct Server {
    child: Child,
    pub base: String,
    pub admin_token: Option<String>,
}

impl Server {
    pub fn start(data: &Path, url: Option<&str>) -> Server {
        Server::start_with(data, url, &[])
    }

    /// Started with more flags.
    pub fn start_with(data: &Path, url: Option<&str>, extra: &[&str]) -> Server {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_isa-ledger"));
        cmd.arg("--data-dir")
            .arg(data)
            .args(["serve", "--listen", "127.0.0.1:0", "--demo"])
            .args(extra)
            .env_remove("DATABASE_URL")
            .env_remove("ISA_LEDGER_PARTNERSHIP_SECRET")
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        if let Some(url) = url {
            cmd.arg("--database-url").arg(url);
        }
        let mut child = cmd.spawn().expect("start isa-ledger serve");
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let mut admin_token = None;
        let base = loop {
            let line = lines
                .next()
                .expect("serve exited before listening")
                .unwrap();
            if let Some(rest) =
                line.strip_prefix("administrator token (shown once; keep it safe): ")
            {
                admin_token = Some(rest.trim().to_string());
            }
            if let Some(addr) = line.strip_prefix("listening on ") {
                break addr.trim().to_string();
            }
        };
        // Keep reading stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Server {
            child,
            base,
            admin_token,
        }
    }

    /// SIGTERM, then the exit status.
    pub fn stop(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "serve did not stop within 30 s");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// A first start on an empty data directory: the server, the administrator token it
/// printed, and a client for it.
pub fn first_start(data: &Path, url: Option<&str>, extra: &[&str]) -> (Server, String, Api) {
    let server = Server::start_with(data, url, extra);
    let admin = server
        .admin_token
        .clone()
        .expect("a first start prints the admin token");
    let api = Api {
        http: Client::new(),
        base: server.base.clone(),
    };
    (server, admin, api)
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub struct Api {
    pub http: Client,
    pub base: String,
}

impl Api {
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> (StatusCode, Value, reqwest::header::HeaderMap) {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap();
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, value, headers)
    }

    pub async fn get(&self, path: &str, token: &str) -> (StatusCode, Value) {
        let (s, v, _) = self.call(Method::GET, path, Some(token), None).await;
        (s, v)
    }

    pub async fn post(&self, path: &str, token: &str, body: &Value) -> (StatusCode, Value) {
        let (s, v, _) = self.call(Method::POST, path, Some(token), Some(body)).await;
        (s, v)
    }

    /// Creates a user and returns a fresh token for it.
    pub async fn user(&self, admin: &str, name: &str, partner: &str, role: &str) -> String {
        let (s, v) = self
            .post(
                "/v1/admin/users",
                admin,
                &json!({"name": name, "partner": partner, "role": role}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        let (s, v) = self
            .post(
                &format!("/v1/admin/users/{name}/tokens"),
                admin,
                &json!({"label": "test"}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        v["token"].as_str().unwrap().to_string()
    }

    /// Exports the log over HTTP into `dir` (as `token`, a regulator) and checks it
    /// with the real offline verifier, `isa-ledger verify`.
    pub async fn export_and_verify(&self, token: &str, dir: &Path) {
        let fetch = |file: String| {
            let request = self
                .http
                .get(format!("{}/v1/ledger/export/{file}", self.base))
                .bearer_auth(token);
            async move {
                let r = request.send().await.unwrap();
                assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
                r.bytes().await.unwrap()
            }
        };
        let checkpoint = fetch("checkpoint".into()).await;
        let size: u64 = std::str::from_utf8(&checkpoint)
            .unwrap()
            .lines()
            .nth(1)
            .unwrap()
            .parse()
            .unwrap();
        std::fs::write(dir.join("checkpoint"), &checkpoint).unwrap();
        for file in ["entries.jsonl", "keys.jsonl", "ledger.vkey"] {
            let bytes = fetch(format!("{file}?tree_size={size}")).await;
            std::fs::write(dir.join(file), &bytes).unwrap();
        }
        let entries = std::fs::read_to_string(dir.join("entries.jsonl")).unwrap();
        assert_eq!(entries.lines().count() as u64, size);
        let verified = Command::new(env!("CARGO_BIN_EXE_isa-ledger"))
            .arg("verify")
            .arg(dir)
            .output()
            .unwrap();
        assert!(
            verified.status.success(),
            "the HTTP export verifies: {}{}",
            String::from_utf8_lossy(&verified.stdout),
            String::from_utf8_lossy(&verified.stderr)
        );
    }

    /// The view's rows once `pred` holds for them (the views follow the log within a
    /// second or so).
    pub async fn rows_until(
        &self,
        path: &str,
        token: &str,
        pred: impl Fn(&[Value]) -> bool,
    ) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let (s, v) = self.get(path, token).await;
            assert_eq!(s, StatusCode::OK, "{v}");
            let items = v["items"].as_array().cloned().unwrap_or_default();
            if pred(&items) {
                return items;
            }
            assert!(Instant::now() < deadline, "{path} never got there: {v}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// POSTs a body of `len` bytes over a connection of its own, reading the answer
    /// while the body is still being written, as curl does. The server answers a body
    /// declared far over the limit before reading it and closes the connection; a
    /// client that finishes writing before it reads (reqwest does) would see only the
    /// broken pipe.
    pub async fn post_oversized(&self, path: &str, token: &str, len: usize) -> (u16, Value) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let host = self.base.trim_start_matches("http://").to_string();
        let stream = tokio::net::TcpStream::connect(&host).await.unwrap();
        let (mut from_server, mut to_server) = stream.into_split();
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n\
             Content-Type: application/json\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n"
        );
        let writing = tokio::spawn(async move {
            to_server.write_all(head.as_bytes()).await?;
            let chunk = vec![b'x'; 64 * 1024];
            let mut left = len;
            while left > 0 {
                let n = left.min(chunk.len());
                to_server.write_all(&chunk[..n]).await?;
                left -= n;
            }
            Ok::<_, std::io::Error>(())
        });
        let mut answer = Vec::new();
        let mut buf = vec![0u8; 16 * 1024];
        let deadline = Instant::now() + Duration::from_secs(30);
        let parsed = loop {
            if let Some(parsed) = parse_response(&answer) {
                break parsed;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, from_server.read(&mut buf)).await {
                Ok(Ok(n)) if n > 0 => answer.extend_from_slice(&buf[..n]),
                other => panic!(
                    "no whole answer to the oversized POST ({other:?}); got {:?}",
                    String::from_utf8_lossy(&answer)
                ),
            }
        };
        writing.abort();
        parsed
    }
}

/// The status and JSON body of a whole HTTP/1.1 response with a Content-Length, or None
/// while more is to come.
fn parse_response(bytes: &[u8]) -> Option<(u16, Value)> {
    let end = bytes.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&bytes[..end]).unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().unwrap())
        })
        .unwrap_or_else(|| panic!("no Content-Length in {head}"));
    let body = bytes.get(end + 4..end + 4 + length)?;
    Some((status, serde_json::from_slice(body).unwrap()))
}

pub fn problem(status: StatusCode, body: &Value, expected: StatusCode, kind: &str) {
    assert_eq!(status, expected, "{body}");
    assert_eq!(body["type"], format!("/problems/{kind}"), "{body}");
    assert_eq!(body["status"], expected.as_u16(), "{body}");
    assert!(
        body["detail"].as_str().is_some_and(|d| !d.is_empty()),
        "{body}"
    );
}

pub fn command(partner: &str, stream: &str, at: &str, fact: Value) -> Value {
    let mut c = json!({
        "stream": stream,
        "by": {"partner": partner, "user": format!("{partner}-dpo"), "role": "data-protection-officer"},
        "at": at,
    });
    c.as_object_mut()
        .unwrap()
        .extend(fact.as_object().unwrap().clone());
    c
}

pub fn keys(items: &[Value]) -> Vec<&str> {
    items.iter().map(|i| i["key"].as_str().unwrap()).collect()
}

pub fn problem_status((status, body): (StatusCode, Value), expected: StatusCode) {
    assert_eq!(status, expected, "{body}");
    assert!(body["type"].as_str().is_some(), "{body}");
}
