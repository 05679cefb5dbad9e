//! Headless Chromium driven over the DevTools protocol (a WebSocket of JSON
//! commands), for the web-view tests: open a page, read it with script,
//! click like a user (real mouse events at an element's position), and save
//! screenshots.

use serde_json::{json, Value};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

pub struct Browser {
    child: Child,
    _profile: tempfile::TempDir,
    ws: WebSocket<MaybeTlsStream<TcpStream>>,
    next_id: u64,
}

impl Browser {
    /// Starts `chromium --headless` with a fresh profile and attaches to
    /// its page.
    pub fn start() -> Browser {
        let profile = tempfile::tempdir().expect("profile dir");
        let child = Command::new("chromium")
            .args([
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--no-default-browser-check",
                "--window-size=1400,900",
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Its own group, so the browser's helper processes end with it.
            .process_group(0)
            .spawn()
            .expect("chromium starts (scripts/setup.sh installs it)");
        // Chromium writes its DevTools port into the profile.
        let port_file = profile.path().join("DevToolsActivePort");
        let deadline = Instant::now() + Duration::from_secs(60);
        let port: u16 = loop {
            if let Some(p) = std::fs::read_to_string(&port_file)
                .ok()
                .and_then(|s| s.lines().next().and_then(|l| l.trim().parse().ok()))
            {
                break p;
            }
            assert!(Instant::now() < deadline, "chromium did not open DevTools");
            std::thread::sleep(Duration::from_millis(50));
        };
        let targets: Value = ureq::get(&format!("http://127.0.0.1:{port}/json/list"))
            .call()
            .expect("DevTools target list")
            .into_json()
            .expect("JSON target list");
        let page = targets
            .as_array()
            .and_then(|t| t.iter().find(|t| t["type"] == "page"))
            .and_then(|t| t["webSocketDebuggerUrl"].as_str())
            .expect("a page target")
            .to_owned();
        let (ws, _) = tungstenite::connect(page.as_str()).expect("DevTools WebSocket");
        if let MaybeTlsStream::Plain(s) = ws.get_ref() {
            s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        }
        let mut b = Browser {
            child,
            _profile: profile,
            ws,
            next_id: 0,
        };
        b.call("Page.enable", json!({}));
        b
    }

    /// Sends one command and returns its result (events in between are
    /// skipped).
    pub fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let msg = json!({"id": id, "method": method, "params": params}).to_string();
        self.ws
            .send(Message::text(msg))
            .expect("DevTools command sent");
        loop {
            let m = self.ws.read().expect("DevTools answer");
            let Message::Text(text) = m else { continue };
            let v: Value = serde_json::from_str(text.as_str()).expect("DevTools JSON");
            if v["id"] == id {
                assert!(v.get("error").is_none(), "{method} failed: {v}");
                return v["result"].clone();
            }
        }
    }

    /// Opens `url` and waits until its document has loaded.
    pub fn navigate(&mut self, url: &str) {
        self.call("Page.navigate", json!({"url": url}));
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.eval("document.readyState") != "complete"
            || self.eval("location.href") != json!(url)
        {
            assert!(Instant::now() < deadline, "{url} did not load");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The value of a JavaScript expression (promises awaited).
    pub fn eval(&mut self, expression: &str) -> Value {
        let r = self.call(
            "Runtime.evaluate",
            json!({"expression": expression, "returnByValue": true, "awaitPromise": true}),
        );
        assert!(
            r.get("exceptionDetails").is_none(),
            "{expression} threw: {r}"
        );
        r["result"]["value"].clone()
    }

    /// Clicks the element `selector` finds with a real mouse press and
    /// release at its centre.
    pub fn click(&mut self, selector: &str) {
        let sel = serde_json::to_string(selector).unwrap();
        let at = self.eval(&format!(
            "(() => {{ const e = document.querySelector({sel}); if (!e) return null; \
             e.scrollIntoView(); const r = e.getBoundingClientRect(); \
             return {{x: r.x + r.width / 2, y: r.y + r.height / 2}}; }})()"
        ));
        assert!(at.is_object(), "nothing matches {selector}");
        for kind in ["mousePressed", "mouseReleased"] {
            self.call(
                "Input.dispatchMouseEvent",
                json!({"type": kind, "x": at["x"], "y": at["y"], "button": "left", "clickCount": 1}),
            );
        }
    }

    /// Saves a PNG of the page.
    pub fn screenshot(&mut self, path: &Path) {
        use base64::Engine;
        let r = self.call("Page.captureScreenshot", json!({"format": "png"}));
        let png = base64::engine::general_purpose::STANDARD
            .decode(r["data"].as_str().expect("screenshot data"))
            .expect("base64 PNG");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, png).expect("screenshot saved");
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // SAFETY: signals the process group of the browser this test started.
        unsafe { libc::kill(-(self.child.id() as i32), libc::SIGKILL) };
        let _ = self.child.wait();
    }
}
